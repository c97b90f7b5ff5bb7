"""The production profile on real PostgreSQL, Redis, RabbitMQ and nginx."""
