"""Process orchestration: training the Rasa model and running the services of a deployment."""
