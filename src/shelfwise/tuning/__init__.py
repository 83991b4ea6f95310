"""Fine-tuning recipes for the pretrained text encoder (bi-encoder contrastive training, PEFT methods)."""
