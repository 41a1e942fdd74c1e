"""Scrapy commands of this project (``COMMANDS_MODULE``): each module's command replaces
Scrapy's command of the same name."""
