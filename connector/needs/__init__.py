"""The needs register and the yearly needs analysis (README "Needs analysis").

``analysis``: who needs what in a year (gaps the rules found + declared needs), pure;
``declared``: needs declared in a CSV file or the Feedback survey; ``view``: the rows the
`connector needs` command shows, read from the ledger.
"""
