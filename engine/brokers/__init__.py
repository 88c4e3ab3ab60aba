"""Brokers: the paper broker now; ccxt and Alpaca implement the same interface."""
