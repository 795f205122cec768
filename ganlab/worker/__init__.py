"""The worker: claims experiments from the queue and runs each in a child process."""
