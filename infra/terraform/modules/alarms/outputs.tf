output "topic_arn" {
  description = "ARN of the alerts topic."
  value       = aws_sns_topic.alerts.arn
}

output "alarm_names" {
  description = "Every alarm this module creates."
  value = [
    aws_cloudwatch_metric_alarm.ecs_cpu.alarm_name,
    aws_cloudwatch_metric_alarm.rds_cpu.alarm_name,
    aws_cloudwatch_metric_alarm.api_error_rate.alarm_name,
    aws_cloudwatch_metric_alarm.api_latency_p95.alarm_name,
    aws_cloudwatch_metric_alarm.rds_connections.alarm_name,
  ]
}
