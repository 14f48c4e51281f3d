"""ORM models of API users and their hashed tokens."""
