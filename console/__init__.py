"""tradeconsole's Textual console: a view of engine snapshots and an issuer of engine commands.

Import `console.app.TradeConsoleApp` explicitly; this package does not import Textual on its own so
that the headless engine path never pays for it.
"""
