"""Alarms: what an alarm is, its episodes, and CloudWatch's evaluation of them."""
