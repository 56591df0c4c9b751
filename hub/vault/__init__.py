"""Personal data at rest: envelope encryption with one data key per person, the master
key ring, rotation and erasure (crypto-shredding)."""
