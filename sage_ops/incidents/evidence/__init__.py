"""Sources of evidence: alarms and metrics (CloudWatch, local probes), log lines, and what
changed before an incident."""
