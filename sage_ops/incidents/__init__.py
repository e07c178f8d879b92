"""Incident triage: alarm sources, evidence gathering, root-cause rules, reports, notification."""
