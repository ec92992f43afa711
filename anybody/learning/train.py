"""Learn identities from photos: one loop, read from top to bottom, for every method.

    photos ─ face detection, alignment ─► augmented views ─► face features ─┐
                                                           └► VAE latents x0 │
    a method's learner (anybody/methods/) ─► the identity's key and value tokens ◄┘
        Celeb Basis:  features ─► MLP ─► coefficients c ─► tokens mean + c·B
        SeFi-IDE:     "person" ─► small transformer ─► per-stage key and value tokens
        Textual Inversion: free token vectors
    prompt "a photo of a face of <id> ..." ─► frozen text encoder(s) (keys, values) ─► frozen UNet
    loss = ‖UNet(noisy x0, t, text) − noise‖²  [+ λ · face-wise attention loss]

`learn` = `prepare` (load, views, learner, prompts) → `restore` (a checkpoint, with --resume) → `fit` (the
loop) → `save_identities`. Only the learner trains; the UNet, VAE and text encoders are frozen. SD 1.x,
SD 2.x and SDXL take the same path: every text encoder gets its own tokens (SDXL has two), and
`PromptEncoder` feeds the UNet what the family's pipeline would. Several photos learn jointly (one
learner, one identity file per person), or as one person (`same_person`: one identity from all their
views). What differs between methods lives in their `Learner`; this file has no branch on the method.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict

import torch
from diffusers import DDPMScheduler, DiffusionPipeline
from tqdm.auto import tqdm

from anybody.errors import Interrupted, TrainingError, UsageError
from anybody.face import get_face_encoder, prepare_face
from anybody.identity import Identity, token_strings
from anybody.identity.file import face_thumbnail
from anybody.learning.attention_term import AttentionTerm
from anybody.learning.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from anybody.learning.conditioning import PromptEncoder
from anybody.learning.config import LearnConfig
from anybody.learning.names import check_names, checkpoint_path
from anybody.learning.photos import group_photos, photo_label, warn_unlike_faces
from anybody.learning.precision import check_precision, loss_scaler
from anybody.learning.run import Batch, Photo, Run
from anybody.learning.targets import Target, denoising_target
from anybody.learning.views import ViewBank, build_view_bank
from anybody.methods import get_method
from anybody.methods.learner import LearnerContext, learner_class
from anybody.models import describe_model, load_pipeline, model_family, text_encoders
from anybody.version import __version__

log = logging.getLogger("anybody")


def learn(
    photos: Photo | Sequence[Photo],
    names: str | Sequence[str],
    model: str | DiffusionPipeline | None = None,
    config: LearnConfig | None = None,
    *,
    library: str | os.PathLike[str] | None = None,
    resume: bool = False,
    restart: bool = False,
    replace: bool = False,
    keep_checkpoint: bool = False,
    callback: Callable[[int, float], None] | None = None,
    progress: bool = True,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    same_person: bool = False,
) -> list[Identity]:
    """Learn one identity per photo (jointly when several) and save each to the library.

    With `same_person`, all the photos are one person, learned as one identity from all their views; from
    Python, an item of `photos` that is a list holds one identity's photos (`anybody.learning.photos`).

    An identity of the same name already in the library is kept unless `replace`. A checkpoint of an
    interrupted run is continued with `resume`, discarded with `restart`, and refused otherwise; a
    finished run removes its checkpoint unless `keep_checkpoint`. `callback(step, loss)` runs after every
    step; raising KeyboardInterrupt from it stops learning as Ctrl-C does (checkpoint saved, `Interrupted`).
    """
    config = config or LearnConfig()
    config.check()
    photos = [photos] if isinstance(photos, (str, os.PathLike)) else list(photos)
    names = check_names(photos, names, config, library, resume=resume, replace=replace, restart=restart,
                        same_person=same_person)
    groups = group_photos(photos, same_person)
    run = prepare(groups, names, model, config, library=library, device=device, dtype=dtype, progress=progress)
    try:
        if resume:
            restore(run)
        fit(run, callback=callback, progress=progress)
        identities = save_identities(run)
    finally:
        run.text.remove()
    if not keep_checkpoint:
        run.checkpoint.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # kept while it holds another run's checkpoint
            run.checkpoint.parent.rmdir()
    return identities


def prepare(photos: Sequence[Photo | Sequence[Photo]], names: list[str], model: str | DiffusionPipeline | None,
            config: LearnConfig, *, library: str | os.PathLike[str] | None = None, device: str | None = None,
            dtype: str | torch.dtype | None = None, progress: bool = True) -> Run:
    """Load the frozen model, make every photo's views, build the method's learner and the prompts.

    `photos` has one item per name: a photo, or a list of one person's photos. Each photo gets its own
    views (seeded by its place among all the photos), and an identity's bank is all its photos' views;
    a photo whose face is far from the other photos' faces is named in a warning."""
    pipe = model if isinstance(model, DiffusionPipeline) else load_pipeline(model, device=device, dtype=dtype)
    device_ = pipe.unet.device
    check_precision(device_, pipe.unet.dtype)
    resolution = config.resolution or pipe.unet.config.sample_size * pipe.vae_scale_factor
    noise_schedule = DDPMScheduler.from_config(pipe.scheduler.config)

    groups = group_photos(photos)
    face_encoder = get_face_encoder(config.face_encoder)
    faces = [[prepare_face(photo, face_index=config.face_index, detector=config.detector, encoder=face_encoder)
              for photo in group] for group in groups]
    for name, group, own in zip(names, groups, faces):
        warn_unlike_faces(name, group, [face.descriptor for face in own], face_encoder.same_person_distance)
    every_face = [face for own in faces for face in own]
    views = iter([build_view_bank(face, face_encoder, pipe.vae, resolution, config.views, seed=config.seed + index)
                  for index, face in enumerate(tqdm(every_face, desc="Preparing views",
                                                    disable=not progress or len(every_face) < 2))])
    banks = [_joined([next(views) for _ in own]) for own in faces]

    torch.manual_seed(config.seed)
    encoders = text_encoders(pipe)
    context = LearnerContext(tokenizers={name: tokenizer for name, tokenizer, _ in encoders},
                             tables={name: encoder.get_input_embeddings().weight for name, _, encoder in encoders},
                             feature_dim=banks[0].features.shape[1], identities=len(names),
                             total_timesteps=noise_schedule.config.num_train_timesteps)
    learner = learner_class(get_method(config.method)).create(config, context).to(device_)

    identity_tokens = [token_strings(name, learner.tokens) for name in names]
    text = PromptEncoder(pipe, identity_tokens, learner.initial_rows(), resolution)
    prompts = [text.tokenize(learner.prompts(tokens, config.class_word)) for tokens in identity_tokens]
    attention = AttentionTerm(pipe, text, learner, identity_tokens, resolution, weight=config.attention_loss,
                              tokens=config.attention_tokens, level=config.attention_level,
                              class_word=config.class_word)
    if config.gradient_checkpointing:
        pipe.unet.enable_gradient_checkpointing()
    if config.channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
    recipe = {"names": names, "photos": [[photo_label(photo) for photo in group] for group in groups],
              "model": describe_model(pipe), **learner.recipe(), "config": config.recipe()}
    run = Run(config=config, names=names, photos=groups, faces=faces, banks=banks, face_encoder=face_encoder.name,
              pipe=pipe, learner=learner, optimizer=learner.make_optimizer(config), text=text,
              prompt_ids={encoder: torch.stack([ids[encoder] for ids in prompts]).to(device_)
                          for encoder in text.names},
              attention=attention, noise_schedule=noise_schedule,
              generator=torch.Generator(device="cpu").manual_seed(config.seed),
              noise_generator=torch.Generator(device=device_).manual_seed(config.seed + 1),
              checkpoint=checkpoint_path(names, library), recipe=recipe,
              scaler=loss_scaler(device_, pipe.unet.dtype),
              denoiser=torch.compile(pipe.unet) if config.compile else pipe.unet, library=library)
    run.random_states = run.states_now()
    return run


def _joined(banks: list[ViewBank]) -> ViewBank:
    """One identity's bank: its photos' views, one photo's after the other's."""
    return ViewBank(features=torch.cat([bank.features for bank in banks]),
                    latents=torch.cat([bank.latents for bank in banks]))


def restore(run: Run) -> None:
    """Continue from the run's checkpoint: the learner, the optimizer, the random states and the step."""
    state = load_checkpoint(run.checkpoint)
    if state.recipe != run.recipe:
        raise UsageError("The checkpoint was made with other settings, photos or model",
                         "Resume with the same arguments as the interrupted run, or pass --restart to start again")
    run.learner.load_state_dict(state.learner)
    run.optimizer.load_state_dict(state.optimizer)
    run.generator.set_state(state.random_states["generator"])
    run.noise_generator.set_state(state.random_states["noise"].to(run.noise_generator.get_state()))
    run.step = run.saved_step = state.step
    run.random_states = run.states_now()
    log.info("Resuming from step %d of %d.", run.step, run.config.steps)


def sample_batch(run: Run) -> Batch:
    """Random identities, views, prompt templates, timesteps and noise (from the run's own generators).

    Views are drawn uniformly from each chosen identity's own bank (all its photos' views), one draw per
    element: with one photo per identity that is the same stream as one batched draw of `config.views`."""
    config, device, generator = run.config, run.unet.device, run.generator
    who = torch.randint(len(run.names), (config.batch_size,), generator=generator)
    view = torch.cat([torch.randint(len(run.banks[i].features), (1,), generator=generator) for i in who.tolist()])
    template = torch.randint(len(run.learner.templates), (config.batch_size,), generator=generator)
    features = torch.stack([run.banks[i].features[v] for i, v in zip(who.tolist(), view.tolist())])
    latents = torch.stack([run.banks[i].latents[v] for i, v in zip(who.tolist(), view.tolist())])
    ids = {encoder: table[who.to(device), template.to(device)] for encoder, table in run.prompt_ids.items()}
    noise = torch.randn(latents.shape, generator=run.noise_generator, device=device)  # fp32, as the latents
    timesteps = torch.randint(run.noise_schedule.config.num_train_timesteps, (config.batch_size,),
                              generator=run.noise_generator, device=device)
    noisy = run.noise_schedule.add_noise(latents, noise, timesteps)
    return Batch(who, template, features, latents, ids, noise, timesteps, noisy)


def fit(run: Run, *, target: Target | None = None, callback: Callable[[int, float], None] | None = None,
        progress: bool = True) -> None:
    """The loop, from `run.step` to `config.steps`: a checkpoint every `checkpoint_every` steps, at the end,
    and when interrupted (Ctrl-C, or a callback raising KeyboardInterrupt), which raises `Interrupted`.

    A step never waits for the device: the losses stay on it and are read, with a check that they and the
    learner's weights are finite, every `check_every` steps, on the first step, before each checkpoint and
    at the end. `run.loss`, the progress bar and `callback(step, loss)` show the last loss read, so on the
    steps in between the callback is given the loss of the last checked step (a float on every step).
    """
    config, learner = run.config, run.learner
    target = target or denoising_target(run.noise_schedule)
    bar = tqdm(total=config.steps, initial=run.step, desc="Learning", disable=not progress, unit="step")
    first, unread = run.step + 1, []  # unread: the losses since the last check, still on the device
    try:
        with run.attention.installed(run.unet):
            for step in range(run.step, config.steps):
                batch = sample_batch(run)
                wanted = target(batch)
                keys, values = learner(batch.features, batch.who, batch.timesteps)
                condition = run.attention.condition(batch.ids, keys, values, batch.template)
                prediction = run.denoise(batch.noisy, batch.timesteps, condition)
                loss = torch.nn.functional.mse_loss(prediction.float(), wanted.float())
                loss = loss + run.attention.loss(batch.who, batch.template)
                run.optimizer.zero_grad(set_to_none=True)
                run.scaler.scale(loss).backward()
                run.scaler.step(run.optimizer)
                run.scaler.update()
                learner.after_step(batch.who)
                unread.append(loss.detach())
                run.step, run.random_states = step + 1, run.states_now()

                bar.update(1)
                checkpoint_due = run.step % config.checkpoint_every == 0
                if checkpoint_due or run.step in (first, config.steps) or run.step % config.check_every == 0:
                    _check_finite(run, unread)
                    bar.set_postfix(loss=f"{run.loss:.4f}")
                if checkpoint_due:
                    save(run)
                if callback is not None:
                    callback(run.step, run.loss)
    except KeyboardInterrupt:
        _check_finite(run, unread)  # a diverged state is reported, never saved as a checkpoint
        save(run)
        raise Interrupted(
            f"Learning was interrupted after step {run.step} of {config.steps}; the checkpoint is saved",
            "Run the same command with --resume to continue (or add --steps "
            f"{max(run.step, 1)} --resume to keep what was learned so far)",
        ) from None
    finally:
        bar.close()
    if run.saved_step != run.step:
        save(run)  # the final state, so a run killed while writing the identities can still finish


def _check_finite(run: Run, unread: list[torch.Tensor]) -> None:
    """Read the losses of the steps since the last check (one wait for the device) into `run.loss`, and stop
    with advice when one of them or the learner's weights stopped being finite. `unread` is emptied."""
    if not unread:
        return
    weights_finite = torch.stack([p.isfinite().all() for p in run.learner.parameters()]).all()
    read = torch.cat([torch.stack(unread).float(), weights_finite.float()[None]]).cpu()
    losses, since = read[:-1], run.step - len(unread)  # since: the steps completed before the first unread
    unread.clear()
    run.loss = float(losses[-1])
    bad = (~torch.isfinite(losses)).nonzero()
    if not len(bad) and read[-1] == 1:
        return
    step = since + int(bad[0]) + 1 if len(bad) else run.step
    kept = ("no checkpoint had been written yet" if run.saved_step is None else
            f"the last good checkpoint (step {run.saved_step}) is kept")
    raise TrainingError(f"Learning diverged at step {step} (the loss or the weights stopped being finite); {kept}",
                        f"Try a lower learning rate (--lr {run.config.learning_rate / 10:g})")


def save(run: Run) -> None:
    """Write the checkpoint of the last completed step (atomically)."""
    save_checkpoint(run.checkpoint, TrainingState(step=run.step, learner=run.learner.state_dict(),
                                                  optimizer=run.optimizer.state_dict(),
                                                  random_states=run.random_states, recipe=run.recipe))
    run.saved_step = run.step


def save_identities(run: Run) -> list[Identity]:
    """Each identity's file: what its learner learned (from the features of all its photos' views), every
    photo's face descriptor and their mean, a thumbnail of its first photo's aligned face, and the run's
    metadata."""
    identities = []
    for index, name in enumerate(run.names):
        descriptors = torch.stack([torch.from_numpy(face.descriptor).float() for face in run.faces[index]])
        identity = Identity(name=name, encoder_embeddings={}, face_descriptor=descriptors.mean(dim=0),
                            face_descriptors=descriptors, metadata=_metadata(run, index),
                            face_thumbnail=face_thumbnail(run.faces[index][0].aligned))
        run.learner.write_identity(identity, index, run.banks[index].features.to(run.unet.device))
        identity.save(library=run.library)
        identities.append(identity)
    return identities


def _metadata(run: Run, index: int) -> dict[str, object]:
    widths = [str(encoder.get_input_embeddings().weight.shape[1]) for _, _, encoder in text_encoders(run.pipe)]
    photos = [photo_label(photo) for photo in run.photos[index]]
    return {
        "method": run.config.method,
        "base_model": describe_model(run.pipe),
        "family": model_family(run.pipe),
        "width": "+".join(widths),
        "tokens": str(run.learner.tokens),
        "training": asdict(run.config),
        "final_loss": f"{run.loss:.6f}",
        "face_encoder": run.face_encoder,
        "photo": photos[0],  # the first, for readers from before several photos
        "photos": photos,
        "anybody_version": __version__,
        **run.learner.metadata(),
    }
