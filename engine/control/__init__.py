"""Out-of-band control: a Unix socket the running engine listens on, and signal policy."""
