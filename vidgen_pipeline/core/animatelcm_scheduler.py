"""AnimateLCM-SVD's few-step consistency sampler, for diffusers' StableVideoDiffusionPipeline.

Ported from ``AnimateLCMSVDStochasticIterativeScheduler`` in AnimateLCM
(https://github.com/G-U-N/AnimateLCM, ``animatelcm_svd/animatelcm_scheduler.py``; the
repository is MIT-licensed, Copyright (c) 2024 Fu-Yun Wang; the file carries the Apache-2.0
header of diffusers' ``CMStochasticIterativeScheduler``, Copyright 2023 The HuggingFace Team,
from which it derives). diffusers' own ``CMStochasticIterativeScheduler`` is not equivalent:
it feeds the UNet ``1000 * 0.25 * log(sigma + 1e-44)`` and uses consistency-model boundary
scalings with ``sigma_min``, where the AnimateLCM-SVD UNet was distilled with SVD's own EDM
preconditioning. Changes from the original: no debug prints; ``step`` takes its noise from
``self.generator`` when the caller passes none (diffusers' SVD pipeline never passes one), so
a seeded generator makes a clip reproducible; no noise is drawn for the last step (it is
multiplied by zero there); timesteps are float32 on every device; custom timesteps and
``add_noise`` (unused by the SVD pipeline) are left out.

The math, with ``N = num_train_timesteps`` (40) and ``n`` inference steps:

- sigmas: the Karras schedule ``sigma(r) = (sigma_max^(1/rho) + r (sigma_min^(1/rho) -
  sigma_max^(1/rho)))^rho`` at ``r = k * (N // n) / (N - 1)`` for ``k = 0..n-1`` (so the first
  sigma is ``sigma_max``), then ``0``;
- the UNet's timestep: ``t = 0.25 * ln(sigma)`` (SVD's continuous time, no factor 1000);
- the UNet's input: ``x / sqrt(sigma^2 + sigma_data^2)``;
- the denoised sample: ``c_skip * x + c_out * F`` with ``c_skip = sigma_data^2 / (sigma^2 +
  sigma_data^2)`` and ``c_out = -sigma * sigma_data / sqrt(sigma^2 + sigma_data^2)``
  (optionally clamped to [-1, 1]);
- the next sample: ``denoised + s_noise * sigma_next * z``, ``z ~ N(0, I)``;
- the initial noise scale: ``sqrt(sigma_max^2 + 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor


@dataclass
class AnimateLCMSVDStochasticIterativeSchedulerOutput(BaseOutput):
    """``prev_sample``: the sample for the next step (the result after the last one)."""

    prev_sample: torch.Tensor


class AnimateLCMSVDStochasticIterativeScheduler(SchedulerMixin, ConfigMixin):
    """Multistep consistency sampling on SVD's EDM parameterisation (see the module doc).

    ``generator``: where ``step`` draws its noise when the caller passes no generator; set it
    (a seeded ``torch.Generator``, or the one given to the pipeline) for reproducible clips.
    """

    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 40,
        sigma_min: float = 0.002,
        sigma_max: float = 80.0,
        sigma_data: float = 0.5,
        s_noise: float = 1.0,
        rho: float = 7.0,
        clip_denoised: bool = True,
    ):
        self.init_noise_sigma = (sigma_max**2 + 1) ** 0.5
        sigmas = np.concatenate([self._karras(np.linspace(0, 1, num_train_timesteps)), [0.0]])
        self.sigmas = torch.from_numpy(sigmas)
        self.timesteps = torch.from_numpy(self.sigma_to_t(sigmas)).float()
        self.num_inference_steps: int | None = None
        self.is_scale_input_called = False
        self._step_index: int | None = None
        self.generator: torch.Generator | None = None

    @property
    def step_index(self) -> int | None:
        """The index of the current timestep; one more after each ``step``."""
        return self._step_index

    @staticmethod
    def sigma_to_t(sigmas) -> np.ndarray:
        """The UNet's timestep for ``sigmas``: ``0.25 * ln(sigma)``."""
        return 0.25 * np.log(np.asarray(sigmas, dtype=np.float64) + 1e-44)

    def _karras(self, ramp: np.ndarray) -> np.ndarray:
        """Karras et al. (2022): sigma_max at ramp 0, sigma_min at ramp 1."""
        rho = self.config.rho
        low = self.config.sigma_min ** (1 / rho)
        high = self.config.sigma_max ** (1 / rho)
        return (high + ramp * (low - high)) ** rho

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None):
        """The ``num_inference_steps`` sigmas and timesteps of one run (see the module doc)."""
        train = self.config.num_train_timesteps
        if not 1 <= num_inference_steps <= train:
            raise ValueError(
                f"num_inference_steps {num_inference_steps} is outside 1..{train}, the "
                f"timesteps this scheduler was distilled with"
            )
        self.num_inference_steps = num_inference_steps
        ratio = train // num_inference_steps
        ramp = np.arange(num_inference_steps) * ratio / (train - 1)
        sigmas = self._karras(ramp)
        timesteps = self.sigma_to_t(sigmas)
        self.sigmas = torch.from_numpy(np.concatenate([sigmas, [0.0]]).astype(np.float32)).to(
            device=device
        )
        # float32 everywhere (the original keeps float64 off mps): the UNet's time embedding
        # casts to float32 first anyway, and one dtype suits torch.compile and CUDA graphs.
        self.timesteps = torch.from_numpy(timesteps).to(device=device, dtype=torch.float32)
        self._step_index = None

    def _init_step_index(self, timestep) -> None:
        if isinstance(timestep, torch.Tensor):
            timestep = timestep.to(self.timesteps.device)
        candidates = (self.timesteps == timestep).nonzero()
        # As diffusers' Euler: of repeated timesteps the first step takes the second.
        self._step_index = int(candidates[1 if len(candidates) > 1 else 0].item())

    def scale_model_input(self, sample: torch.Tensor, timestep) -> torch.Tensor:
        """``sample / sqrt(sigma^2 + sigma_data^2)`` for the UNet."""
        if self._step_index is None:
            self._init_step_index(timestep)
        sigma = self.sigmas[self._step_index]
        self.is_scale_input_called = True
        return sample / ((sigma**2 + self.config.sigma_data**2) ** 0.5)

    def get_scalings_for_boundary_condition(self, sigma):
        """``(c_skip, c_out)`` of SVD's EDM preconditioning at ``sigma``."""
        sigma_data = self.config.sigma_data
        c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
        c_out = -sigma * sigma_data / (sigma**2 + sigma_data**2) ** 0.5
        return c_skip, c_out

    def step(
        self,
        model_output: torch.Tensor,
        timestep,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ):
        """Denoise ``sample`` with the UNet's ``model_output``, then re-noise it to the next
        sigma (no noise after the last step)."""
        if isinstance(timestep, int) or (
            isinstance(timestep, torch.Tensor) and not timestep.is_floating_point()
        ):
            raise ValueError("pass one of scheduler.timesteps to step(), not an integer index")
        if self._step_index is None:
            self._init_step_index(timestep)
        sigma = self.sigmas[self._step_index]
        sigma_next = self.sigmas[self._step_index + 1]
        c_skip, c_out = self.get_scalings_for_boundary_condition(sigma)
        denoised = c_out * model_output + c_skip * sample
        if self.config.clip_denoised:
            denoised = denoised.clamp(-1, 1)
        sigma_hat = sigma_next.clamp(min=0, max=self.config.sigma_max)
        # One-step sampling adds no noise, nor does the last step (sigma_next is 0 there).
        if 1 < len(self.timesteps) and self._step_index + 2 < len(self.sigmas):
            noise = randn_tensor(
                model_output.shape,
                generator=generator if generator is not None else self.generator,
                device=model_output.device,
                dtype=model_output.dtype,
            )
            prev_sample = denoised + noise * self.config.s_noise * sigma_hat
        else:
            prev_sample = denoised
        self._step_index += 1
        if not return_dict:
            return (prev_sample,)
        return AnimateLCMSVDStochasticIterativeSchedulerOutput(prev_sample=prev_sample)

    def __len__(self) -> int:
        return self.config.num_train_timesteps
