"""The inventory: sites, their equipment, clients and the services they hold there, agents.

The tables (``models``) and the inventory files the collector loads at start (``files``) are
here, low in the collector: most features name a site. Editing the inventory through the API
and the site pages are the ``collector.sites`` feature, above."""
