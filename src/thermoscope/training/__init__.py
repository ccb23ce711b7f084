"""Temperature in training: a learnable temperature, contrastive losses, Gumbel-softmax."""
