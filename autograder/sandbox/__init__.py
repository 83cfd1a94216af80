"""Code that runs inside the grading sandbox (the kernel driver and the agent in the kernel)."""
