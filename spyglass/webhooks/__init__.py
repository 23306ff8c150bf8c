"""Webhooks: endpoints users register for task events, deliveries signed as the Standard
Webhooks specification says, stored before they are sent and retried from that store."""
