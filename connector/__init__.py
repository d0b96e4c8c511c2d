"""moodle-compliance-connector: staff training compliance from Moodle web services."""

__version__ = "0.1.0"
