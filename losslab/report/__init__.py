"""Reporting: experiment loggers (``logger=``) and, later, run comparison tables and plots."""
