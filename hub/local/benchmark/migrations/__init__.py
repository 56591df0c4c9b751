"""SQL migrations of the bench service (schema ``bench``)."""
