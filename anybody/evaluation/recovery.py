"""The synthetic recovery task: an identity planted in the model, learned back from its photo, per method.

Without real weights no picture means anything, but this question still has an answer: plant a known
identity (token embeddings in the model's own celeb basis, mean + c·B with random unit coefficients c),
make the frozen model's prediction with those tokens the target of every learning step (`teacher_target`),
and let each method learn from the real photo's views and prompts as it always does. After the same number
of steps, how close are its tokens to the planted ones, and how much of the loss did it remove?

Every method recovers the same planted tokens (the first n of them for a method with n tokens per
identity: SeFi-IDE has one, learned per stage as a key and a value, all compared with the planted one).
A planted identity lies in the celeb basis, so Celeb Basis can reach it exactly; Textual Inversion and
SeFi-IDE can reach any tokens, so it is within reach of every method.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from anybody.errors import UsageError
from anybody.evaluation.people import Person, find_people
from anybody.evaluation.settings import RecoverySettings
from anybody.evaluation.variants import variant_config
from anybody.identity import Identity
from anybody.storage import make_folder, write_json, write_text

FIRST_LAST = 10  # the loss is compared as the mean of the first and of the last this many steps
PLANT_SEED = 123


def planted_tokens(pipe: object, person_index: int, seed: int = PLANT_SEED) -> dict[str, torch.Tensor]:
    """{encoder: (2, width)}: a person's planted tokens, mean + c·B in each encoder's celeb basis."""
    from anybody.basis import build_basis
    from anybody.models import text_encoders

    planted = {}
    for offset, (name, tokenizer, encoder) in enumerate(text_encoders(pipe)):
        basis = build_basis(tokenizer, encoder.get_input_embeddings().weight)
        generator = torch.Generator().manual_seed(seed + 1000 * person_index + offset)
        coefficients = torch.nn.functional.normalize(torch.randn(2, basis.rank, generator=generator), dim=-1)
        planted[name] = basis.embeddings(coefficients)
    return planted


def token_sets(identity: Identity, encoder: str) -> torch.Tensor:
    """(sets, tokens, width): every token set the identity uses (one, or a key and a value per stage)."""
    if identity.stages:
        return torch.cat([identity.stage_keys[encoder], identity.stage_values[encoder]]).float()
    return identity.encoder_embeddings[encoder][None].float()


def closeness(identity: Identity, planted: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean cosine to the planted tokens and mean distance to them, over encoders, token sets and tokens."""
    cosines, distances = [], []
    for encoder, target in planted.items():
        tokens = token_sets(identity, encoder)
        goal = target[: tokens.shape[1]].expand_as(tokens)
        cosines.append(torch.nn.functional.cosine_similarity(tokens, goal, dim=-1).flatten())
        distances.append((tokens - goal).norm(dim=-1).flatten())
    return {"cosine": torch.cat(cosines).mean().item(), "distance": torch.cat(distances).mean().item()}


def recover_one(settings: RecoverySettings, spec: str, person: Person, index: int, pipe: object, folder: Path,
                bar: tqdm) -> dict:
    """Learn one person's planted identity back with one method; the numbers of the table."""
    from anybody.learning.targets import teacher_target
    from anybody.learning.train import fit, prepare, save_identities

    config = variant_config(spec, steps=settings.steps, views=settings.views, seed=settings.seed,
                            learning_rate=settings.learning_rate, checkpoint_every=settings.steps)
    planted = planted_tokens(pipe, index)
    run = prepare([person.photo], [person.name], pipe, config, library=folder, progress=False)
    losses: list[float] = []
    try:
        tokens = run.learner.tokens
        if tokens > 2:
            raise UsageError(f"The recovery task plants 2 tokens; {spec} learns {tokens}", "Use --tokens 2 or fewer")
        teacher = {person.name: Identity(person.name, {encoder: rows[:tokens] for encoder, rows in planted.items()})}
        start = Identity(person.name, {})
        run.learner.write_identity(start, 0, run.banks[0].features.to(run.unet.device))

        def record(step: int, loss: float) -> None:
            losses.append(loss)
            bar.update(1)

        fit(run, target=teacher_target(run, teacher), callback=record, progress=False)
        learned = save_identities(run)[0]
    finally:
        run.text.remove()
        run.checkpoint.unlink(missing_ok=True)
    before, after = closeness(start, planted), closeness(learned, planted)
    first = sum(losses[:FIRST_LAST]) / len(losses[:FIRST_LAST])
    last = sum(losses[-FIRST_LAST:]) / len(losses[-FIRST_LAST:])
    return {"method": spec, "person": person.name, "steps": config.steps, "learning_rate": config.learning_rate,
            "tokens": tokens, "cosine_before": before["cosine"], "cosine_after": after["cosine"],
            "distance_before": before["distance"], "distance_after": after["distance"],
            "relative_distance": after["distance"] / before["distance"] if before["distance"] else float("nan"),
            "loss_first": first, "loss_last": last, "loss_removed": 1 - last / first if first else float("nan")}


def recover(settings: RecoverySettings, *, progress: bool = True) -> list[dict]:
    """The recovery task for every method and person (a finished run is reused), with its report."""
    from anybody.models import load_pipeline

    settings.check()
    people = find_people(settings.photos)
    out = make_folder(settings.out)
    results = []
    bar = tqdm(total=settings.steps * len(people) * len(settings.methods), desc="Recovering", unit="step",
               disable=not progress)
    try:
        for spec in settings.methods:
            pipe = None
            for index, person in enumerate(people):
                recipe = {**asdict(settings), "photos": None, "out": None, "method": spec, "person": person.name,
                          "photo": person.digest}
                key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
                folder = out / "runs" / spec / key
                done = folder / "result.json"
                if done.is_file():
                    results.append(json.loads(done.read_text()))
                    bar.update(settings.steps)
                    continue
                if pipe is None:  # a fresh pipeline per method: methods name their tokens alike
                    pipe = load_pipeline(settings.model, device=settings.device, dtype=settings.dtype)
                bar.set_description(f"Recovering with {spec}")
                result = recover_one(settings, spec, person, index, pipe, folder, bar)
                write_json(done, result)
                results.append(result)
    finally:
        bar.close()
    write_json(out / "recovery.json", {"settings": asdict(settings), "results": results})
    write_text(out / "recovery.md", recovery_table(results, settings))
    return results


def recovery_table(results: list[dict], settings: RecoverySettings) -> str:
    """The BENCHMARKS table: per method, the means over people."""
    lines = [f"Recovery of a planted identity on `{settings.model}`: {settings.steps} steps, {settings.views} views, "
             f"seed {settings.seed}, {len({r['person'] for r in results})} photo(s); means over photos.", "",
             "| method | lr | tokens | cosine to planted: start → end | distance to planted: end / start | "
             "loss: first 10 → last 10 steps | loss removed |", "|---|---|---|---|---|---|---|"]
    for method in dict.fromkeys(r["method"] for r in results):
        rows = [r for r in results if r["method"] == method]

        def mean(key: str, rows: list[dict] = rows) -> float:
            return sum(r[key] for r in rows) / len(rows)

        lines.append(f"| {method} | {rows[0]['learning_rate']:g} | {rows[0]['tokens']} | "
                     f"{mean('cosine_before'):.3f} → {mean('cosine_after'):.3f} | {mean('relative_distance'):.3f} | "
                     f"{mean('loss_first'):.2e} → {mean('loss_last'):.2e} | {mean('loss_removed'):.1%} |")
    return "\n".join(lines) + "\n"
