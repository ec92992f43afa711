"""Learn identities from photos: one readable loop, from top to bottom, for both methods.

    photos ─ face detection, alignment ─► augmented views ─► face features ─┐
                                                           └► VAE latents x0 │
    Celeb Basis: features ─► MLP ─► coefficients c ─► tokens mean + c·B ◄────┘
    SeFi-IDE:    "person" ─► small transformer ─► per-stage key and value tokens
    prompt "a photo of a face of <id> ..." ─► frozen text encoder(s) (keys, values) ─► frozen UNet
    loss = ‖UNet(noisy x0, t, text) − noise‖²  [+ λ · face-wise attention loss]

Only the learner trains (the MLP, or SeFi's token module); the UNet, VAE and text encoders are frozen.
SD 1.x, SD 2.x and SDXL take the same path: every text encoder gets its own basis and tokens (SDXL has
two, 768 and 1280 wide in the real model), and `PromptEncoder` feeds the UNet what the family's pipeline
would (for SDXL also the pooled embedding and the size "time ids").
Several photos learn jointly (one shared MLP; each identity's coefficients are the average of the MLP's
outputs over that identity's views, or the paper's running average with `coefficient_average="ema"`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
from diffusers import DDPMScheduler, DiffusionPipeline
from tqdm.auto import tqdm

from anybody import __version__, settings
from anybody.attention import (
    AttentionStore,
    face_attention_loss,
    install,
    prompt_length,
    resolution_for,
    token_positions,
)
from anybody.basis import BasisOptions, CelebBasis, build_basis
from anybody.errors import IdentityError, TrainingError, UsageError
from anybody.face import FaceInput, get_face_encoder, prepare_face
from anybody.identity import Identity, identity_path, token_strings, validate_name
from anybody.identity.stages import tokens_at
from anybody.learning.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from anybody.learning.conditioning import Conditioning, PromptEncoder
from anybody.learning.learners import CelebBasisLearner, StageTokenLearner
from anybody.learning.prompts import fill
from anybody.learning.views import ViewBank, build_view_bank
from anybody.models import describe_model, load_pipeline, model_family, text_encoders

log = logging.getLogger("anybody")
Method = Literal["celeb-basis", "sefi"]


@dataclass
class LearnConfig:
    """Every setting of a learning run, as plain data (saved in each identity file).

    `LearnConfig.for_method("sefi")` gives SeFi-IDE's paper defaults (Adam, lr 0.005, 1000 steps, λ 0.003).
    """

    method: Method = "celeb-basis"
    steps: int = 800
    batch_size: int = 2
    learning_rate: float = 1e-2  # Celeb Basis: the paper's 5e-3 scaled by its batch of 2
    seed: int = 0
    mapper_depth: int = 1
    stages: int = 5  # SeFi-IDE: denoising stages with their own key and value tokens
    attention_loss: float = 0.0  # λ of the face-wise attention loss (SeFi-IDE: 0.003)
    attention_tokens: Literal["all", "identity", "prompt"] = "all"
    attention_level: int = 1  # cross-attention level of the loss: 1 = 32x32 for SD 1.x at 512 px
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

    @classmethod
    def for_method(cls, method: Method, **overrides: object) -> LearnConfig:
        defaults: dict[str, object] = {"method": method}
        if method == "sefi":
            defaults.update(steps=1000, learning_rate=5e-3, attention_loss=0.003)
        return replace(cls(**defaults), **overrides)  # type: ignore[arg-type]

    def check(self) -> None:
        if self.method not in ("celeb-basis", "sefi"):
            raise UsageError(f"Unknown method {self.method!r}", "Use --method celeb-basis or --method sefi")
        for name in ("steps", "batch_size", "views", "checkpoint_every", "mapper_depth", "stages"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name.replace('_', ' ')} must be at least 1 (got {getattr(self, name)})",
                                 f"Pass a positive --{name.replace('_', '-')}")
        if not 0 < self.learning_rate < math.inf:  # also False for NaN
            raise UsageError(f"The learning rate must be a finite positive number (got {self.learning_rate})",
                             "Try --lr 0.01")
        if not 0 <= self.attention_loss < math.inf:
            raise UsageError(f"The attention-loss weight must be a finite number, 0 or more "
                             f"(got {self.attention_loss})",
                             "Try --attention-loss 0.003 (SeFi-IDE's value), or 0 to turn it off")
        if self.resolution is not None and (self.resolution < 64 or self.resolution % 8):
            raise UsageError(f"The resolution must be a multiple of 8, at least 64 (got {self.resolution})",
                             "Leave it out to use the model's own size")


class Interrupted(TrainingError):
    """Learning was stopped by the user; the checkpoint on disk can be resumed."""


def check_names(photos: Sequence[str | os.PathLike[str]], names: str | Sequence[str], config: LearnConfig,
                library: str | os.PathLike[str] | None = None, *, resume: bool = False,
                replace: bool = False) -> list[str]:
    """The names `learn` will save under, checked before anything heavy is loaded: safe characters, one per
    photo, not the class word of the learning prompts, and not taken in the library (unless replacing or
    resuming the same identity)."""
    given = [names] if isinstance(names, str) else list(names)
    names = [validate_name(name) for name in given]
    if len(photos) != len(names):
        raise UsageError(f"{_count(len(photos), 'photo')} and {_count(len(names), 'name')} were given",
                         "Give exactly one name per photo, e.g. --name alice,bob")
    seen: dict[str, str] = {}
    for original, name in zip(given, names):
        if name in seen:
            spelled = "" if seen[name] == original else f" ({seen[name]} and {original}: names are kept in lower case)"
            raise UsageError(f"The name {name} is given twice{spelled}",
                             "Give each photo its own name, e.g. --name alice,bob")
        seen[name] = original
    if config.class_word.lower() in names:
        raise IdentityError(f"The name {config.class_word.lower()!r} is the class word of the learning prompts",
                            f"Choose another name, for example {config.class_word.lower()}_1")
    taken = [name for name in names if identity_path(name, library).exists()]
    if taken and not (replace or resume):  # resuming continues the same identity
        raise IdentityError(f"The library already has an identity called {', '.join(taken)}",
                            f"Choose another name (e.g. {taken[0]}_2), or pass --replace to learn it again")
    return names


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def learn(
    photos: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    names: str | Sequence[str],
    model: str | DiffusionPipeline | None = None,
    config: LearnConfig | None = None,
    *,
    library: str | os.PathLike[str] | None = None,
    resume: bool = False,
    replace: bool = False,
    teacher: dict[str, Identity] | None = None,
    callback: Callable[[int, float], None] | None = None,
    progress: bool = True,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
) -> list[Identity]:
    """Learn one identity per photo (jointly when several) and save each to the library.

    An identity of the same name already in the library is kept unless `replace`. `teacher` ({name:
    Identity}) distils: the target becomes the frozen model's own prediction with the teacher's tokens in
    place of the identity, instead of the sampled noise (how the tests prove that learning recovers a
    known identity). `callback(step, loss)` runs after every step.
    """
    config = config or LearnConfig()
    config.check()
    photos = [photos] if isinstance(photos, (str, os.PathLike)) else list(photos)
    names = check_names(photos, names, config, library, resume=resume, replace=replace)

    # The frozen model.
    pipe = model if isinstance(model, DiffusionPipeline) else load_pipeline(model, device=device, dtype=dtype)
    unet, vae = pipe.unet, pipe.vae
    device_, dtype_ = unet.device, unet.dtype
    tables = {name: encoder.get_input_embeddings().weight for name, _, encoder in text_encoders(pipe)}
    resolution = config.resolution or unet.config.sample_size * pipe.vae_scale_factor
    noise_schedule = DDPMScheduler.from_config(pipe.scheduler.config)
    total_timesteps = noise_schedule.config.num_train_timesteps

    # The photos: one face each, its augmented views, their face features and latents.
    face_encoder = get_face_encoder(config.face_encoder)
    faces: list[FaceInput] = [
        prepare_face(photo, face_index=config.face_index, detector=config.detector, encoder=face_encoder)
        for photo in photos
    ]
    banks: list[ViewBank] = [
        build_view_bank(face, face_encoder, vae, resolution, config.views, seed=config.seed + index)
        for index, face in enumerate(tqdm(faces, desc="Preparing views", disable=not progress or len(faces) < 2))
    ]

    # What learns. Everything else is frozen.
    torch.manual_seed(config.seed)
    bases: dict[str, CelebBasis] = {}
    if config.method == "celeb-basis":
        bases = {name: build_basis(tokenizer, tables[name], options=config.basis)
                 for name, tokenizer, _ in text_encoders(pipe)}
        learner: CelebBasisLearner | StageTokenLearner = CelebBasisLearner(
            bases, banks[0].features.shape[1], config.mapper_depth)
        initial_rows = {name: basis.mean for name, basis in bases.items()}
    else:
        person = {name: tables[name][tokenizer(config.class_word, add_special_tokens=False).input_ids[0]]
                  for name, tokenizer, _ in text_encoders(pipe)}
        person = {name: row.detach().float().clone() for name, row in person.items()}  # the tables get written
        learner = StageTokenLearner(person, len(names), config.stages, total_timesteps)
        initial_rows = {name: row.expand(learner.tokens, -1) for name, row in person.items()}
    learner.to(device_)
    optimizer_class = torch.optim.AdamW if config.method == "celeb-basis" else torch.optim.Adam
    optimizer = optimizer_class(learner.parameters(), lr=config.learning_rate)

    # The identities' tokens in the text encoders, the pre-tokenized prompts, and the attention loss.
    identity_tokens = [token_strings(name, learner.tokens) for name in names]
    text = PromptEncoder(pipe, identity_tokens, initial_rows, resolution)
    prompts = [text.tokenize(fill(learner.templates, learner.phrase(tokens, config.class_word)))
               for tokens in identity_tokens]
    prompt_ids = {encoder: torch.stack([ids[encoder] for ids in prompts]).to(device_)
                  for encoder in text.names}  # per encoder: (identities, templates, length)
    store = None
    if config.attention_loss > 0 or config.method == "sefi":
        attention_resolution = resolution_for(unet, resolution // pipe.vae_scale_factor, config.attention_level)
        store = AttentionStore(attention_resolution if config.attention_loss > 0 else None, keep_grad=True)
        reference_prompts = fill(learner.templates, learner.phrase([config.class_word] * learner.tokens,
                                                                   config.class_word))
        with torch.no_grad():
            reference_text = text(text.tokenize(reference_prompts)).hidden
        prompt_facts = [[(token_positions(pipe.tokenizer, prompt, tokens), prompt_length(pipe.tokenizer, prompt))
                         for prompt in fill(learner.templates, learner.phrase(tokens, config.class_word))]
                        for tokens in identity_tokens]  # per identity and template: (identity positions, length)
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()

    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    noise_generator = torch.Generator(device=device_).manual_seed(config.seed + 1)
    averages: dict[str, torch.Tensor] = {}
    start = 0

    checkpoint = _checkpoint_path(names, library)
    recipe = {"names": names, "model": describe_model(pipe), "basis": {e: b.key for e, b in bases.items()},
              "config": _recipe(config)}
    if resume:
        if not checkpoint.is_file():
            raise UsageError(f"There is no checkpoint to resume for {', '.join(names)} ({checkpoint})",
                             "Run without --resume to start learning")
        state = load_checkpoint(checkpoint)
        if state.recipe != recipe:
            raise UsageError("The checkpoint was made with other settings, photos or model",
                             "Resume with the same arguments as the interrupted run, or start again without --resume")
        learner.load_state_dict(state.learner)
        optimizer.load_state_dict(state.optimizer)
        generator.set_state(state.random_states["generator"])
        noise_generator.set_state(state.random_states["noise"].to(noise_generator.get_state()))
        averages, start = state.averages, state.step
        log.info("Resuming from step %d of %d.", start, config.steps)

    def random_states() -> dict[str, torch.Tensor]:
        return {"generator": generator.get_state(), "noise": noise_generator.get_state()}

    saved_step = start if resume else None  # the step of this run's checkpoint on disk, if any

    def save(step: int, states: dict[str, torch.Tensor]) -> None:
        nonlocal saved_step
        save_checkpoint(checkpoint, TrainingState(step=step, learner=learner.state_dict(),
                                                  optimizer=optimizer.state_dict(), random_states=states,
                                                  averages=averages, recipe=recipe))
        saved_step = step

    bar = tqdm(total=config.steps, initial=start, desc="Learning", disable=not progress, unit="step")
    loss_value = float("nan")
    completed, states_at_completed = start, random_states()  # what a checkpoint taken now would hold
    processors = install(unet, store) if store is not None else contextlib.nullcontext()
    try:
        with _sigterm_as_interrupt(), processors:
            for step in range(start, config.steps):
                # A batch: random identities, views, prompt templates, timesteps and noise.
                who = torch.randint(len(names), (config.batch_size,), generator=generator)
                view = torch.randint(config.views, (config.batch_size,), generator=generator)
                template = torch.randint(len(learner.templates), (config.batch_size,), generator=generator)
                features = torch.stack([banks[i].features[v] for i, v in zip(who.tolist(), view.tolist())])
                latents = torch.stack([banks[i].latents[v] for i, v in zip(who.tolist(), view.tolist())])
                ids = {encoder: table[who.to(device_), template.to(device_)] for encoder, table in prompt_ids.items()}
                noise = torch.randn(latents.shape, generator=noise_generator, device=device_).to(dtype_)
                timesteps = torch.randint(total_timesteps, (config.batch_size,), generator=noise_generator,
                                          device=device_)
                noisy = noise_schedule.add_noise(latents, noise, timesteps)

                # The target: the noise (or velocity), or the teacher's own prediction.
                if teacher is not None:
                    target = _teacher_prediction(unet, text, store, teacher, names, who, ids, noisy, timesteps)
                elif noise_schedule.config.prediction_type == "v_prediction":
                    target = noise_schedule.get_velocity(latents, noise, timesteps)
                else:
                    target = noise

                # The identity's tokens → the prompt's encodings (keys, values) → the UNet's prediction.
                keys, values = learner(features, who, timesteps)
                condition = _condition(text, store, ids, keys, values)
                if store is not None:
                    store.reference_states = reference_text[template.to(device_)] if store.resolution else None
                    store.clear()
                prediction = unet(noisy, timesteps, condition.hidden, added_cond_kwargs=condition.added).sample
                loss = torch.nn.functional.mse_loss(prediction.float(), target.float())
                if store is not None and store.resolution is not None:
                    loss = loss + config.attention_loss * _attention_loss(store, config.attention_tokens,
                                                                          [prompt_facts[i][j] for i, j in
                                                                           zip(who.tolist(), template.tolist())])
                loss_value = loss.item()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if not (torch.isfinite(loss) and all(torch.isfinite(p).all() for p in learner.parameters())):
                    kept = ("no checkpoint had been written yet" if saved_step is None else
                            f"the last good checkpoint (step {saved_step}) is kept")
                    raise TrainingError(
                        f"Learning diverged at step {step + 1} (the loss or the weights stopped being finite); {kept}",
                        f"Try a lower learning rate (--lr {config.learning_rate / 10:g})",
                    )
                _update_averages(averages, learner.last_coefficients, who, names, config)
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
        text.remove()
    if completed != start or not resume:
        save(completed, states_at_completed)

    # The identities: each one's tokens (and coefficients, or stage tokens) and file.
    identities = []
    with torch.no_grad():
        for index, name in enumerate(names):
            identity = Identity(
                name=name,
                encoder_embeddings={},
                face_descriptor=torch.from_numpy(faces[index].descriptor).float(),
                metadata=_metadata(pipe, bases, config, photos[index], face_encoder.name, loss_value, learner.tokens),
            )
            if isinstance(learner, CelebBasisLearner):
                views = learner.coefficients(banks[index].features)
                for encoder_name, basis in bases.items():
                    final = averages.get(f"{name}.{encoder_name}") if config.coefficient_average == "ema" else None
                    final = views[encoder_name].mean(dim=0) if final is None else final.to(device_)
                    identity.encoder_coefficients[encoder_name] = final.cpu()
                    identity.encoder_embeddings[encoder_name] = basis.embeddings(final).cpu()
            else:
                for encoder_name, tokens in learner.identity_tokens(index).items():  # (stages, 2, tokens, width)
                    tokens = tokens.cpu()
                    identity.stage_keys[encoder_name], identity.stage_values[encoder_name] = tokens[:, 0], tokens[:, 1]
                    identity.encoder_embeddings[encoder_name] = tokens[:, 1].mean(dim=0)
                identity.module = {key: value.cpu() for key, value in learner.generators[index].state_dict().items()}
            identity.save(library=library)
            identities.append(identity)
    return identities


def _condition(text: PromptEncoder, store: AttentionStore | None, ids: dict[str, torch.Tensor],
               keys: dict[str, torch.Tensor], values: dict[str, torch.Tensor]) -> Conditioning:
    """The UNet's conditioning with the key tokens; the value tokens' encoding goes to the processors.

    With separate value tokens (SeFi-IDE) the pooled SDXL embedding is the value encoding's, as at
    generation time.
    """
    condition = text(ids, keys)
    if store is not None:
        store.value_states = None
        if values is not keys:
            by_values = text(ids, values)
            store.value_states, condition.added = by_values.hidden, by_values.added
    return condition


def _attention_loss(store: AttentionStore, tokens: str, facts: list[tuple[list[int], int]]) -> torch.Tensor:
    """The face-wise attention loss of the step; options #1 and #2 need each prompt's own positions."""
    if tokens == "all":
        return face_attention_loss(store.reference_maps(), store.target_maps()).float()
    losses = []
    for row, (positions, length) in enumerate(facts):
        rows = [slice(row * record.heads, (row + 1) * record.heads) for record in store.records]
        losses.append(face_attention_loss([r.reference[s] for r, s in zip(store.records, rows)],
                                          [r.probabilities[s] for r, s in zip(store.records, rows)], tokens,
                                          identity_positions=positions, prompt_length=length))
    return torch.stack(losses).mean().float()


def _teacher_prediction(unet, text: PromptEncoder, store: AttentionStore | None, teacher: dict[str, Identity],
                        names: list[str], who: torch.Tensor, ids: dict[str, torch.Tensor], noisy: torch.Tensor,
                        timesteps: torch.Tensor) -> torch.Tensor:
    """The frozen model's prediction with the teacher identities' tokens in place of the learned ones."""
    missing = [name for name in names if name not in teacher]
    if missing:
        raise UsageError(f"The teacher has no identity for {', '.join(missing)}", "Give one per identity")
    keys, values = {}, {}
    for encoder in text.names:
        pairs = [tokens_at(teacher[names[i]], timesteps[row : row + 1].cpu(), encoder)
                 for row, i in enumerate(who.tolist())]
        keys[encoder] = torch.cat([key for key, _ in pairs]).to(noisy.device)
        values[encoder] = torch.cat([value for _, value in pairs]).to(noisy.device)
    with torch.no_grad():
        if store is not None:
            saved, store.resolution = store.resolution, None  # the teacher's maps are not part of the loss
        condition = _condition(text, store, ids, keys, values)
        prediction = unet(noisy, timesteps, condition.hidden, added_cond_kwargs=condition.added).sample
        if store is not None:
            store.resolution = saved
        return prediction


def _update_averages(averages: dict[str, torch.Tensor], coefficients: dict[str, torch.Tensor], who: torch.Tensor,
                     names: list[str], config: LearnConfig) -> None:
    """The paper's running average (momentum 0.99) of each identity's normalised coefficients, per encoder."""
    momentum = config.ema_momentum
    for encoder, rows in coefficients.items():
        for row, index in enumerate(who.tolist()):
            key, current = f"{names[index]}.{encoder}", rows[row].detach().cpu()
            previous = averages.get(key)
            averages[key] = current if previous is None else momentum * previous + (1 - momentum) * current


def _checkpoint_path(names: list[str], library: str | os.PathLike[str] | None) -> Path:
    return settings.library_folder(library) / ".checkpoints" / f"{'+'.join(names)}.safetensors"


def _recipe(config: LearnConfig) -> dict:
    """The settings a resumed run must share with the interrupted one (all but the step count)."""
    recipe = asdict(config)
    recipe.pop("steps")
    recipe.pop("checkpoint_every")
    return recipe


def _metadata(pipe: DiffusionPipeline, bases: dict[str, CelebBasis], config: LearnConfig, photo: object,
              face_encoder: str, loss: float, tokens: int) -> dict[str, object]:
    widths = [str(text_encoder.get_input_embeddings().weight.shape[1]) for _, _, text_encoder in text_encoders(pipe)]
    metadata: dict[str, object] = {
        "method": config.method,
        "base_model": describe_model(pipe),
        "family": model_family(pipe),
        "width": "+".join(widths),
        "tokens": str(tokens),
        "training": asdict(config),
        "final_loss": f"{loss:.6f}",
        "face_encoder": face_encoder,
        "photo": Path(str(photo)).name if isinstance(photo, (str, os.PathLike)) else "in-memory image",
        "anybody_version": __version__,
    }
    for encoder_name, basis in bases.items():
        metadata.update({f"basis.{encoder_name}": basis.key, f"basis_components.{encoder_name}": str(basis.rank)})
    if config.method == "sefi":
        metadata["stages"] = str(config.stages)
    return metadata


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
