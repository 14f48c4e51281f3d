"""The ``shelterwatch`` console command."""
