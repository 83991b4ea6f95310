"""How much of the pretrained encoder a fine-tuning run may change: full fine-tuning, or a PEFT
method from ``peft`` (LoRA, AdaLoRA, IA3, prefix tuning).

Each method is a small frozen dataclass in :data:`METHODS`; ``wrap(model, total_steps)`` returns
the module to train. Methods whose adapter folds into the base weights (``mergeable``) are served
as a plain encoder; prefix tuning keeps its virtual tokens and is served through peft.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch


def trainable_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass(frozen=True)
class FullFineTuning:
    """Every weight of the encoder that mean pooling uses is trained."""

    name: str = "full"
    mergeable: bool = True
    learning_rate: float = 3e-5

    def wrap(self, model: torch.nn.Module, total_steps: int = 0) -> torch.nn.Module:
        for name, parameter in model.named_parameters():
            # BERT's pooler head is unused by mean pooling: it would get no gradient.
            parameter.requires_grad_(not name.startswith("pooler."))
        return model

    def peft_config(self, total_steps: int = 0):
        return None

    def after_backward(self, model: torch.nn.Module, step: int) -> None:
        """Hook run after each backward pass (AdaLoRA re-allocates ranks here)."""


@dataclass(frozen=True)
class _PeftMethod:
    def wrap(self, model: torch.nn.Module, total_steps: int = 0) -> torch.nn.Module:
        from peft import get_peft_model

        return get_peft_model(model, self.peft_config(total_steps))

    def after_backward(self, model: torch.nn.Module, step: int) -> None:
        """Hook run after each backward pass (AdaLoRA re-allocates ranks here)."""


@dataclass(frozen=True)
class LoRA(_PeftMethod):
    """Low-rank updates to the attention query and value projections."""

    name: str = "lora"
    mergeable: bool = True
    learning_rate: float = 5e-4
    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: tuple[str, ...] = ("query", "value")

    def peft_config(self, total_steps: int = 0):
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=list(self.target_modules))


@dataclass(frozen=True)
class AdaLoRA(_PeftMethod):
    """LoRA whose rank budget is re-allocated across layers during training (needs the step count)."""

    name: str = "adalora"
    mergeable: bool = True
    learning_rate: float = 5e-4
    init_r: int = 12
    target_r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: tuple[str, ...] = ("query", "value")

    def peft_config(self, total_steps: int = 0):
        from peft import AdaLoraConfig

        total = max(int(total_steps), 10)
        return AdaLoraConfig(
            init_r=self.init_r,
            target_r=self.target_r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            total_step=total,
            # Rank pruning between 10% and 80% of training, as in the AdaLoRA paper's schedule.
            tinit=max(1, total // 10),
            tfinal=max(1, total // 5),
        )

    def after_backward(self, model: torch.nn.Module, step: int) -> None:
        # AdaLoRA's importance scores use the fresh gradients: before the optimiser zeroes them.
        model.base_model.update_and_allocate(step)


@dataclass(frozen=True)
class IA3(_PeftMethod):
    """Learned rescaling of keys, values and feed-forward activations: the fewest parameters."""

    name: str = "ia3"
    mergeable: bool = True
    learning_rate: float = 3e-3
    target_modules: tuple[str, ...] = ("key", "value", "output.dense")
    feedforward_modules: tuple[str, ...] = ("output.dense",)

    def peft_config(self, total_steps: int = 0):
        from peft import IA3Config

        return IA3Config(target_modules=list(self.target_modules), feedforward_modules=list(self.feedforward_modules))


@dataclass(frozen=True)
class PrefixTuning(_PeftMethod):
    """Trained virtual key/value tokens prepended in every layer; the base weights stay untouched."""

    name: str = "prefix"
    mergeable: bool = False
    learning_rate: float = 1e-2
    num_virtual_tokens: int = 10

    def peft_config(self, total_steps: int = 0):
        from peft import PrefixTuningConfig, TaskType

        return PrefixTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=self.num_virtual_tokens)


METHODS = {m.name: m for m in (FullFineTuning(), LoRA(), AdaLoRA(), IA3(), PrefixTuning())}


def get_method(name: str, **overrides):
    """The method registered as ``name``, with some of its fields changed (e.g. ``r=16``)."""
    if name not in METHODS:
        raise ValueError(f"unknown fine-tuning method {name!r}; expected one of {sorted(METHODS)}")
    return replace(METHODS[name], **overrides) if overrides else METHODS[name]


def method_config(method) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(method).items()}


def method_from_config(config: dict):
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k not in ("name", "mergeable")}
    return get_method(config["name"], **fields)

