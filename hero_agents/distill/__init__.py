"""The HERO distillation trainer: per-turn self-teachers inside multi-turn tool conversations."""
