"""Learn identities from photos: Celeb Basis, one readable loop from top to bottom.

    photos ─ face detection, alignment ─► augmented views ─► face features   ─► MLP ─► coefficients c
                                                           └► VAE latents x0           │
    prompt "a photo of a face of <id> <id>_1 person" ◄── embeddings mean + c·B ◄───────┘
    loss = ‖ UNet(noisy x0, t, text) − noise ‖²   (UNet, VAE, text encoder frozen; only the MLP learns)

Several photos learn jointly with one shared MLP (each identity's coefficients are the average of the MLP's
outputs over that identity's views, or the paper's running average with `coefficient_average="ema"`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from diffusers import DDPMScheduler, DiffusionPipeline
from tqdm.auto import tqdm

from anybody import __version__, settings
from anybody.basis import BasisOptions, CelebBasis, build_basis
from anybody.errors import IdentityError, ModelError, TrainingError, UsageError
from anybody.face import FaceInput, get_face_encoder, prepare_face
from anybody.identity import Identity, identity_path, token_strings, validate_name
from anybody.identity.tokens import TokenInjection, install_tokens
from anybody.learning.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from anybody.learning.mapper import CoefficientMapper
from anybody.learning.prompts import identity_prompts
from anybody.learning.views import ViewBank, build_view_bank
from anybody.models import describe_model, load_pipeline, model_family

log = logging.getLogger("anybody")
TOKENS_PER_IDENTITY = 2


@dataclass
class LearnConfig:
    """Every setting of a learning run, as plain data (saved in each identity file)."""

    steps: int = 800
    batch_size: int = 2
    learning_rate: float = 1e-2  # the paper's 5e-3 scaled by its batch of 2
    seed: int = 0
    mapper_depth: int = 1
    views: int = 32  # augmented views per photo, computed once before the loop
    resolution: int | None = None  # default: the model's native size
    checkpoint_every: int = 100
    coefficient_average: Literal["views", "ema"] = "views"
    ema_momentum: float = 0.99
    gradient_checkpointing: bool = False
    class_word: str = "person"
    detector: str = "hog"
    face_encoder: str = "dlib"
    face_index: int | None = None
    basis: BasisOptions = field(default_factory=BasisOptions)

    def check(self) -> None:
        for name in ("steps", "batch_size", "views", "checkpoint_every", "mapper_depth"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name.replace('_', ' ')} must be at least 1 (got {getattr(self, name)})",
                                 f"Pass a positive --{name.replace('_', '-')}")
        if not self.learning_rate > 0:
            raise UsageError(f"The learning rate must be positive (got {self.learning_rate})", "Try --lr 0.01")
        if self.resolution is not None and (self.resolution < 64 or self.resolution % 8):
            raise UsageError(f"The resolution must be a multiple of 8, at least 64 (got {self.resolution})",
                             "Leave it out to use the model's own size")


class Interrupted(TrainingError):
    """Learning was stopped by the user; the checkpoint on disk can be resumed."""


def learn(
    photos: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    names: str | Sequence[str],
    model: str | DiffusionPipeline | None = None,
    config: LearnConfig | None = None,
    *,
    library: str | os.PathLike[str] | None = None,
    resume: bool = False,
    replace: bool = False,
    teacher: dict[str, torch.Tensor] | None = None,
    callback: Callable[[int, float], None] | None = None,
    progress: bool = True,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
) -> list[Identity]:
    """Learn one identity per photo (jointly when several) and save each to the library.

    An identity of the same name already in the library is kept unless `replace`. `teacher`
    ({name: (tokens, width) embeddings}) distils: the target becomes the frozen model's own
    prediction with those embeddings in place of the identity, instead of the sampled noise (how the tests
    prove that learning recovers a known identity). `callback(step, loss)` runs after every step.
    """
    config = config or LearnConfig()
    config.check()
    photos = [photos] if isinstance(photos, (str, os.PathLike)) else list(photos)
    names = [names] if isinstance(names, str) else list(names)
    names = [validate_name(name) for name in names]
    if len(photos) != len(names) or len(set(names)) != len(names):
        raise UsageError(f"{len(photos)} photos and {len(names)} distinct names were given",
                         "Give exactly one distinct name per photo, e.g. --name alice,bob")
    taken = [name for name in names if identity_path(name, library).exists()]
    if taken and not (replace or resume):  # resuming continues the same identity
        raise IdentityError(f"The library already has an identity called {', '.join(taken)}",
                            f"Choose another name (e.g. {taken[0]}_2), or pass --replace to learn it again")

    # The frozen model and its celeb basis.
    pipe = model if isinstance(model, DiffusionPipeline) else load_pipeline(model, device=device, dtype=dtype)
    if model_family(pipe) == "sdxl":
        raise ModelError("Learning on SDXL is not supported yet", "Use an SD 1.x or SD 2.x model")
    tokenizer, text_encoder, unet, vae = pipe.tokenizer, pipe.text_encoder, pipe.unet, pipe.vae
    device_, dtype_ = unet.device, unet.dtype
    basis = build_basis(tokenizer, text_encoder.get_input_embeddings().weight, options=config.basis)
    resolution = config.resolution or unet.config.sample_size * pipe.vae_scale_factor

    # The photos: one face each, its augmented views, their face features and latents.
    encoder = get_face_encoder(config.face_encoder)
    faces: list[FaceInput] = [
        prepare_face(photo, face_index=config.face_index, detector=config.detector, encoder=encoder)
        for photo in photos
    ]
    banks: list[ViewBank] = [
        build_view_bank(face, encoder, vae, resolution, config.views, seed=config.seed + index)
        for index, face in enumerate(tqdm(faces, desc="Preparing views", disable=not progress or len(faces) < 2))
    ]

    # The identities' tokens in the text encoder, and the pre-tokenized training prompts.
    identity_tokens = [token_strings(name, TOKENS_PER_IDENTITY) for name in names]
    token_ids = [
        install_tokens(tokenizer, text_encoder, tokens, basis.mean.to(text_encoder.dtype))
        for tokens in identity_tokens
    ]
    prompt_ids = torch.stack([_tokenize(tokenizer, identity_prompts(tokens, config.class_word))
                              for tokens in identity_tokens]).to(device_)  # (identities, templates, length)
    injection = TokenInjection(text_encoder, [i for ids in token_ids for i in ids])
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    noise_schedule = DDPMScheduler.from_config(pipe.scheduler.config)
    teacher_values = _teacher_values(teacher, names, basis) if teacher else None

    # What learns: the mapper. Everything else is frozen.
    torch.manual_seed(config.seed)
    mapper = CoefficientMapper(banks[0].features.shape[1], basis.rank, TOKENS_PER_IDENTITY, config.mapper_depth)
    mapper.to(device_)
    optimizer = torch.optim.AdamW(mapper.parameters(), lr=config.learning_rate)
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    noise_generator = torch.Generator(device=device_).manual_seed(config.seed + 1)
    averages: dict[str, torch.Tensor] = {}
    start = 0

    checkpoint = _checkpoint_path(names, library)
    recipe = {"names": names, "model": describe_model(pipe), "basis": basis.key, "config": _recipe(config)}
    if resume:
        if not checkpoint.is_file():
            raise UsageError(f"There is no checkpoint to resume for {', '.join(names)} ({checkpoint})",
                             "Run without --resume to start learning")
        state = load_checkpoint(checkpoint)
        if state.recipe != recipe:
            raise UsageError("The checkpoint was made with other settings, photos or model",
                             "Resume with the same arguments as the interrupted run, or start again without --resume")
        mapper.load_state_dict(state.mapper)
        optimizer.load_state_dict(state.optimizer)
        generator.set_state(state.random_states["generator"])
        noise_generator.set_state(state.random_states["noise"].to(noise_generator.get_state()))
        averages, start = state.averages, state.step
        log.info("Resuming from step %d of %d.", start, config.steps)

    def random_states() -> dict[str, torch.Tensor]:
        return {"generator": generator.get_state(), "noise": noise_generator.get_state()}

    def save(step: int, states: dict[str, torch.Tensor]) -> None:
        save_checkpoint(checkpoint, TrainingState(step=step, mapper=mapper.state_dict(),
                                                  optimizer=optimizer.state_dict(), random_states=states,
                                                  averages=averages, recipe=recipe))

    bar = tqdm(total=config.steps, initial=start, desc="Learning", disable=not progress, unit="step")
    loss_value = float("nan")
    completed, states_at_completed = start, random_states()  # what a checkpoint taken now would hold
    try:
        with _sigterm_as_interrupt():
            for step in range(start, config.steps):
                # A batch: random identities, views and prompt templates.
                who = torch.randint(len(names), (config.batch_size,), generator=generator)
                view = torch.randint(config.views, (config.batch_size,), generator=generator)
                template = torch.randint(prompt_ids.shape[1], (config.batch_size,), generator=generator)
                features = torch.stack([banks[i].features[v] for i, v in zip(who.tolist(), view.tolist())])
                latents = torch.stack([banks[i].latents[v] for i, v in zip(who.tolist(), view.tolist())])

                # Face features → coefficients → the identity's token embeddings → the prompt's encoding.
                coefficients = mapper(features)  # (batch, tokens, k), each token's row of unit norm
                embeddings = basis.embeddings(coefficients)  # (batch, tokens, width)
                injection.values = embeddings.repeat(1, len(names), 1)  # each prompt holds its own tokens
                text = text_encoder(prompt_ids[who.to(device_), template.to(device_)])[0]

                # Denoising loss with the model's own noise schedule.
                noise = torch.randn(latents.shape, generator=noise_generator, device=device_).to(dtype_)
                timesteps = torch.randint(noise_schedule.config.num_train_timesteps, (config.batch_size,),
                                          generator=noise_generator, device=device_)
                noisy = noise_schedule.add_noise(latents, noise, timesteps)
                if teacher_values is not None:
                    target = _teacher_prediction(unet, text_encoder, injection, teacher_values, who, noisy, timesteps,
                                                 prompt_ids[who.to(device_), template.to(device_)])
                    injection.values = embeddings.repeat(1, len(names), 1)
                elif noise_schedule.config.prediction_type == "v_prediction":
                    target = noise_schedule.get_velocity(latents, noise, timesteps)
                else:
                    target = noise
                prediction = unet(noisy, timesteps, text).sample
                loss = torch.nn.functional.mse_loss(prediction.float(), target.float())
                loss_value = loss.item()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if not (torch.isfinite(loss) and all(torch.isfinite(p).all() for p in mapper.parameters())):
                    raise TrainingError(
                        f"Learning diverged at step {step + 1} (the loss or the weights stopped being finite); the "
                        f"last good checkpoint (step {completed}) is kept",
                        f"Try a lower learning rate (--lr {config.learning_rate / 10:g})",
                    )

                _update_averages(averages, coefficients.detach(), who, names, config)
                completed, states_at_completed = step + 1, random_states()

                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}")
                if completed % config.checkpoint_every == 0:
                    save(completed, states_at_completed)
                if callback is not None:
                    callback(completed, loss_value)
    except KeyboardInterrupt:
        save(completed, states_at_completed)
        raise Interrupted(
            f"Learning was interrupted after step {completed} of {config.steps}; the checkpoint is saved",
            "Run the same command with --resume to continue (or add --steps "
            f"{max(completed, 1)} --resume to keep what was learned so far)",
        ) from None
    finally:
        bar.close()
        injection.remove()
    if completed != start or not resume:
        save(completed, states_at_completed)

    # The identities: each one's coefficients, embeddings and file.
    with torch.no_grad():
        identities = []
        for index, name in enumerate(names):
            if config.coefficient_average == "ema" and name in averages:
                final = averages[name].to(device_)
            else:
                final = mapper(banks[index].features).mean(dim=0)
            identity = Identity(
                name=name,
                encoder_embeddings={"text_encoder": basis.embeddings(final).cpu()},
                encoder_coefficients={"text_encoder": final.cpu()},
                face_descriptor=torch.from_numpy(faces[index].descriptor).float(),
                metadata=_metadata(pipe, basis, config, photos[index], encoder.name, loss_value),
            )
            identity.save(library=library)
            identities.append(identity)
    return identities


def _tokenize(tokenizer, prompts: list[str]) -> torch.Tensor:
    return tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


def _teacher_values(teacher: dict[str, torch.Tensor], names: list[str], basis: CelebBasis) -> torch.Tensor:
    missing = [name for name in names if name not in teacher]
    if missing:
        raise UsageError(f"The teacher has no embeddings for {', '.join(missing)}", "Give one per identity")
    return torch.stack([teacher[name].to(basis.mean) for name in names])  # (identities, tokens, width)


def _teacher_prediction(unet, text_encoder, injection: TokenInjection, values: torch.Tensor, who: torch.Tensor,
                        noisy: torch.Tensor, timesteps: torch.Tensor, prompt_ids: torch.Tensor) -> torch.Tensor:
    """The frozen model's prediction with the teacher's embeddings in place of the identity's."""
    with torch.no_grad():
        injection.values = values[who].to(noisy.device).repeat(1, values.shape[0], 1)
        return unet(noisy, timesteps, text_encoder(prompt_ids)[0]).sample


def _update_averages(averages: dict[str, torch.Tensor], coefficients: torch.Tensor, who: torch.Tensor,
                     names: list[str], config: LearnConfig) -> None:
    """The paper's running average (momentum 0.99) of each identity's normalised coefficients."""
    for row, index in enumerate(who.tolist()):
        name = names[index]
        current = coefficients[row].cpu()
        previous = averages.get(name)
        momentum = config.ema_momentum
        averages[name] = current if previous is None else momentum * previous + (1 - momentum) * current


def _checkpoint_path(names: list[str], library: str | os.PathLike[str] | None) -> Path:
    return settings.library_folder(library) / ".checkpoints" / f"{'+'.join(names)}.safetensors"


def _recipe(config: LearnConfig) -> dict:
    """The settings a resumed run must share with the interrupted one (all but the step count)."""
    recipe = asdict(config)
    recipe.pop("steps")
    recipe.pop("checkpoint_every")
    return recipe


def _metadata(pipe: DiffusionPipeline, basis: CelebBasis, config: LearnConfig, photo: object, encoder: str,
              loss: float) -> dict[str, object]:
    return {
        "method": "celeb-basis",
        "base_model": describe_model(pipe),
        "family": model_family(pipe),
        "width": str(basis.width),
        "tokens": str(TOKENS_PER_IDENTITY),
        "basis.text_encoder": basis.key,
        "basis_components": str(basis.rank),
        "training": asdict(config),
        "final_loss": f"{loss:.6f}",
        "face_encoder": encoder,
        "photo": Path(str(photo)).name if isinstance(photo, (str, os.PathLike)) else "in-memory image",
        "anybody_version": __version__,
    }


class _sigterm_as_interrupt:
    """Treat SIGTERM like Ctrl-C while learning, so a stopped job still leaves its checkpoint."""

    def __enter__(self) -> None:
        self._previous = None
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            self._previous = signal.signal(signal.SIGTERM, self._raise)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    @staticmethod
    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

