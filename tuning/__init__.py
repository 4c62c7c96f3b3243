"""Tuning the chat model to follow the control signals: the LoRA adapter trainer and the replies eval, which
render prompts with the server's templates and drive the live server."""
