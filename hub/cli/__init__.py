"""The operator's ``hub`` command: running, inspecting and operating a hub."""
