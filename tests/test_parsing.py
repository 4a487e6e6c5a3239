"""Prompt parsing on the real spaCy English pipeline: contract, repair rules, rate, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from starvid.cli import main
from starvid.errors import StarVidError
from starvid.parsing import parse_prompt

CASES = Path(__file__).parent / "data" / "parse_cases.tsv"
ROOT = Path(__file__).resolve().parents[1]


def _summary(prompt: str) -> list[tuple[str, int, list[str]]]:
    return [(s.noun, s.count, s.verb_lemmas) for s in parse_prompt(prompt).subjects]


def _load_cases() -> list[tuple[str, list[tuple[str, int, list[str]]]]]:
    cases = []
    for line in CASES.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        prompt, expected = line.split("\t")
        subjects = []
        for part in expected.split("|"):
            noun, count, verbs = part.split(":")
            subjects.append((noun, int(count), [v for v in verbs.split(",") if v]))
        cases.append((prompt, subjects))
    return cases


def test_contract_example():
    parsed = parse_prompt("three cats walking to the left and a dog jumping on the right")
    assert parsed.to_dict() == {
        "prompt": "three cats walking to the left and a dog jumping on the right",
        "subjects": [
            {"noun": "cat", "text": "cats", "count": 3, "verbs": ["walk"]},
            {"noun": "dog", "text": "dog", "count": 1, "verbs": ["jump"]},
        ],
        "scene": ["left", "right"],
    }


def test_every_prompt_of_the_set_parses_exactly():
    """All benchmark-style prompts parse exactly (nouns, counts, verbs), with no warning."""
    cases = _load_cases()
    assert len(cases) >= 187
    failures = [(p, want, _summary(p)) for p, want in cases if _summary(p) != want]
    assert failures == []
    assert [p for p, _ in cases if parse_prompt(p).warnings] == []


def test_details_round_trip_without_spacy():
    """A saved parse (``details()`` as JSON) rebuilds the same ParsedPrompt."""
    from starvid.parsing import ParsedPrompt

    for prompt, _ in _load_cases():
        parsed = parse_prompt(prompt)
        assert ParsedPrompt.from_details(json.loads(json.dumps(parsed.details()))) == parsed
    # Details saved before parses had warnings rebuild with none.
    saved = parse_prompt("two dogs and no cats").details()
    assert ParsedPrompt.from_details(saved).warnings == ["'no cats' counts zero: not drawn"]
    del saved["warnings"]
    assert ParsedPrompt.from_details(saved).warnings == []


def test_spans_and_token_indices_point_at_the_words():
    prompt = "a pair of ducks swimming in a pond while a frog jumps"
    parsed = parse_prompt(prompt)
    duck, frog = parsed.subjects
    assert prompt[duck.head.start : duck.head.end] == "ducks"
    assert prompt[frog.verbs[0].start : frog.verbs[0].end] == "jumps"
    assert duck.head.index == 3 and frog.head.index == 10
    assert prompt[duck.phrase[0] : duck.phrase[1]] == "a pair of ducks"
    assert "swimming in a pond" in prompt[duck.clause[0] : duck.clause[1]]


# -- one test per repair rule, with the sentence that needs it -----------------------------------


def test_rule_r1_verb_tagged_as_noun():
    assert _summary("A red car drives past two people") == [
        ("car", 1, ["drive"]),
        ("person", 2, []),
    ]


def test_rule_r1b_second_verb_of_a_conjunction_tagged_as_noun():
    assert _summary("a dog runs and jumps over a fence") == [("dog", 1, ["run", "jump"])]


def test_rule_r2_participle_attached_to_the_wrong_noun():
    # The parser attaches "a dog jumping" to "left"; the participle belongs to "dog".
    assert _summary("a cat jumping on the right and a dog running on the left") == [
        ("cat", 1, ["jump"]),
        ("dog", 1, ["run"]),
    ]


def test_rule_r3_directions_are_scene_never_subjects_or_verbs():
    parsed = parse_prompt("a train moving from left to right")
    assert _summary(parsed.prompt) == [("train", 1, ["move"])]  # "left" is not "leave"
    assert parsed.scene == ["left", "right"]


def test_rule_r4_quantifier_phrases_give_the_head_and_count():
    assert _summary("a pair of swans gliding across a lake") == [("swan", 2, ["glide"])]
    assert _summary("a couple of kids riding bicycles down a hill") == [("kid", 2, ["ride"])]


def test_rule_r5_relative_clause_verb_belongs_to_its_antecedent():
    assert _summary("a car that is driving away and two birds flying") == [
        ("car", 1, ["drive"]),
        ("bird", 2, ["fly"]),
    ]
    assert _summary("A cat chasing a mouse that runs away") == [
        ("cat", 1, ["chase"]),
        ("mouse", 1, ["run"]),
    ]


def test_rule_r6_ing_word_tagged_as_noun_after_a_noun():
    assert _summary("a toddler chasing bubbles in the garden") == [("toddler", 1, ["chase"])]
    assert _summary("a yellow taxi turning left at the intersection") == [("taxi", 1, ["turn"])]


def test_rule_r7_coordinated_subjects_share_a_trailing_verb():
    assert _summary("a car and a bus driving side by side") == [
        ("car", 1, ["drive"]),
        ("bus", 1, ["drive"]),
    ]


def test_rule_r8_noun_tagged_as_adjective():
    assert _summary("three geese flying south") == [("goose", 3, ["fly"])]
    assert _summary("a hummingbird hovering next to a flower") == [("hummingbird", 1, ["hover"])]


def test_rule_r9_nearest_subject_of_a_verb_with_two_parser_subjects():
    # The parser gives "sit" both "birds" and "dogs" as subjects; only the nearest is right.
    assert _summary("five birds flying to the right while two dogs sit") == [
        ("bird", 5, ["fly"]),
        ("dog", 2, ["sit"]),
    ]


def test_rule_r10_new_subject_after_an_object():
    assert _summary("a man playing the piano and a woman singing") == [
        ("man", 1, ["play"]),
        ("woman", 1, ["sing"]),
    ]


def test_rule_r11_fronted_participle_belongs_to_the_following_subject():
    assert _summary("Running through the field, a dog chases a butterfly") == [
        ("dog", 1, ["run", "chase"])
    ]


def test_rule_r12_lemmatizer_slips_are_fixed():
    assert _summary("an astronaut riding a horse on the moon") == [("astronaut", 1, ["ride"])]
    assert _summary("a woman jumping and a man clapping") == [
        ("woman", 1, ["jump"]),
        ("man", 1, ["clap"]),
    ]


def test_rule_r21_a_repeated_mention_gives_its_verb_to_the_earlier_subject():
    assert _summary("a red circle and a blue square, the square jumping") == [
        ("circle", 1, []),
        ("square", 1, ["jump"]),
    ]
    parsed = parse_prompt(
        "two red circles and a blue square, the circles moving left and the square jumping"
    )
    assert [(s.noun, s.count, s.verb_lemmas) for s in parsed.subjects] == [
        ("circle", 2, ["move"]),
        ("square", 1, ["jump"]),
    ]
    assert parsed.scene == []  # the repeated mentions are no scene nouns
    # spaCy tags this "square" an adjective of "moving": a repeated noun is a noun all the same
    assert _summary(
        "a yellow square and a blue circle, the square moving left and the circle moving down"
    ) == [("square", 1, ["move"]), ("circle", 1, ["move"])]
    # the verb is the postposed word, the noun its first mention (the one the boxes are for)
    square = parsed.subjects[1]
    assert parsed.prompt[square.head.start : square.head.end] == "square"
    assert square.head.start < parsed.prompt.index(",") < square.verbs[0].start


# -- counts, lemmas, scene ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "count"),
    [
        ("3 cats sleeping", 3),
        ("twenty birds flying", 20),
        ("eleven ducks swimming", 11),
        ("a dozen eggs rolling", 12),
        ("one dog running", 1),
        ("an owl flying", 1),
        ("dogs running", 2),
        ("a couple of dogs running", 2),
        ("several birds flying", 3),
        ("two sheep grazing", 2),
    ],
)
def test_counts(prompt, count):
    assert parse_prompt(prompt).subjects[0].count == count


def test_irregular_plural_lemmas():
    assert _summary("three mice running and two people walking") == [
        ("mouse", 3, ["run"]),
        ("person", 2, ["walk"]),
    ]


def test_objects_without_count_go_to_scene_objects_with_count_are_subjects():
    parsed = parse_prompt("a dog eating grass in a field")
    assert parsed.scene == ["grass", "field"]
    assert _summary("a lion chasing three zebras") == [("lion", 1, ["chase"]), ("zebra", 3, [])]
    assert parse_prompt("two people shaking hands").scene == ["hand"]


def test_multi_word_subject_keeps_head_noun():
    subject = parse_prompt("an ice cream truck driving down the road").subjects[0]
    assert (subject.noun, subject.text) == ("truck", "truck")
    assert [m.text for m in subject.modifiers] == ["ice", "cream"]


def test_noun_phrase_without_verbs_is_still_laid_out():
    assert _summary("a red car and a blue bus") == [("car", 1, []), ("bus", 1, [])]


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("?!...", "no words"),
        ("123 456", "no words"),
        ("running quickly", "no noun"),
        ("x" * 5000, "too long"),
    ],
)
def test_bad_prompts_raise_one_clear_error(prompt, message):
    with pytest.raises(StarVidError, match=message):
        parse_prompt(prompt)


@pytest.mark.parametrize("prompt", ["", "?!...", "running quickly", "a " * 2500])
def test_cli_bad_input_exits_2_with_one_line(prompt, capsys):
    assert main(["parse", prompt, "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: ")


def test_cli_parse_json_prints_the_contract(capsys):
    assert main(["parse", "two owls sitting on a branch at night", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["subjects"] == [{"noun": "owl", "text": "owls", "count": 2, "verbs": ["sit"]}]
    assert set(data) == {"prompt", "subjects", "scene"}


def test_cli_batch_one_json_a_line_in_order(tmp_path, capsys):
    """Every input line gets its output line, blank ones included (issue 18: `wc -l` of the
    output equals the input's), bad lines as objects with an "error" field."""
    prompts = ["a cat sleeping", "", "three dogs running to the left", "a bird flying"]
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(prompts) + "\n", encoding="utf-8")
    assert main(["parse", "--batch", str(path)]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["prompt"] for line in lines] == prompts
    assert lines[1] == {"prompt": "", "subjects": [], "scene": [], "error": "the prompt is empty"}
    assert [s["count"] for s in lines[2]["subjects"]] == [3]
    assert err == f"error: {path}, prompt 2: the prompt is empty\n"


def test_cli_batch_streams_bounded_input(tmp_path, capsys):
    """A line that is not UTF-8 or too long is an error for that line; an endless file
    (/dev/zero) is refused within its size limit, in one line, without reading it all."""
    path = tmp_path / "mixed.txt"
    path.write_bytes(
        b"a cat sleeping\n"
        + "a caf\xe9 with two cats\n".encode("latin-1")
        + b"x" * 10_000
        + b"\r\ntwo dogs running\r\n"
    )
    assert main(["parse", "--batch", str(path)]) == 0
    out, _ = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 4
    assert "not UTF-8" in lines[1]["error"] and "too long" in lines[2]["error"]
    assert lines[3]["subjects"][0]["noun"] == "dog" and "error" not in lines[0]
    assert main(["parse", "--batch", "/dev/zero"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "larger than 64 MB" in err


def test_cli_batch_missing_file_exits_2(tmp_path, capsys):
    assert main(["parse", "--batch", str(tmp_path / "nope.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_cli_subprocess_help_and_error_exit_codes():
    env_cmd = [sys.executable, "-m", "starvid"]
    help_run = subprocess.run([*env_cmd, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert help_run.returncode == 0
    for name in ("parse", "plan"):
        assert name in help_run.stdout
    bad = subprocess.run(
        [*env_cmd, "parse", "", "--json"], capture_output=True, text=True, cwd=ROOT
    )
    assert bad.returncode == 2
    assert bad.stdout == "" and len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.stderr


def test_rule_r13_participle_after_a_prepositional_object():
    # It describes the main subject, unless that subject already has its finite verb.
    assert _summary("a man in a suit walking to the left") == [("man", 1, ["walk"])]
    assert _summary("a blue bird perched on a branch singing") == [("bird", 1, ["perch", "sing"])]
    assert _summary("a bird flies above a boat sailing on a lake") == [
        ("bird", 1, ["fly"]),
        ("boat", 1, ["sail"]),
    ]


def test_rule_r14_subordinating_as_opens_a_new_subject():
    # The parser reads "as" as a preposition and "sprays" as a compound noun modifier.
    assert _summary("a giraffe walks to the left as an elephant sprays water") == [
        ("giraffe", 1, ["walk"]),
        ("elephant", 1, ["spray"]),
    ]


def test_rule_r15_noun_noun_compounds_keep_the_last_noun():
    assert _summary("a hot dog stand on a street corner") == [("stand", 1, [])]


def test_all_caps_and_title_case_prompts():
    parsed = parse_prompt("THREE DOGS RUNNING")
    assert _summary(parsed.prompt) == [("dog", 3, ["run"])]
    assert parsed.subjects[0].text == "DOGS"  # surface text from the user's prompt
    assert _summary("Three Cats Walking To The Left.") == [("cat", 3, ["walk"])]


def test_meta_nouns_and_possessors_are_not_subjects():
    assert _summary("a video of two dogs running") == [("dog", 2, ["run"])]
    assert _summary("a dog's tail wagging") == [("tail", 1, ["wag"])]


def test_rule_r16_participle_right_after_a_noun_beats_the_parser_subject():
    # The parser makes "cats" the subject of "sleeping" and "soaring" a modifier of "rabbits".
    assert _summary("two cats walking to the left and a dog sleeping") == [
        ("cat", 2, ["walk"]),
        ("dog", 1, ["sleep"]),
    ]
    assert _summary("an eagle soaring and two rabbits running") == [
        ("eagle", 1, ["soar"]),
        ("rabbit", 2, ["run"]),
    ]


def test_rule_r17_noun_tagged_adjective_before_an_ing_word():
    # "square" is tagged ADJ and "jumping" NOUN; the tagger reads "a square" alone as a noun.
    assert _summary("a red square jumping and two blue circles moving left") == [
        ("square", 1, ["jump"]),
        ("circle", 2, ["move"]),
    ]
    assert _summary("a yellow square moving left") == [("square", 1, ["move"])]
    # An -ing word before a noun stays that noun's modifier ("a cute jumping puppy").
    assert [s.noun for s in parse_prompt("a cute jumping puppy").subjects] == ["puppy"]


def test_rule_r22_ing_word_tagged_as_an_auxiliary():
    # The tagger reads "left" as the verb "leave" and "moving" as its auxiliary (AUX).
    assert _summary("a red circle moving left and two green triangles moving down") == [
        ("circle", 1, ["move"]),
        ("triangle", 2, ["move"]),
    ]
    # A real auxiliary stays one: "being" is no action.
    assert _summary("a man being chased by a dog") == [("man", 1, []), ("dog", 1, ["chase"])]


def test_verb_complements_are_the_motion_words_after_each_verb():
    """What the syntax loss binds with a verb in its "phrase" mode: the words that say which
    way it moves, read past "to the", "from" and "in"; the first other word ends them."""

    def complements(prompt):
        return [[c.text for c in s.complements] for s in parse_prompt(prompt).subjects]

    assert complements("a red circle moving left and two blue squares staying still") == [
        ["left"],
        ["still"],
    ]
    assert complements("two cats walking to the left on the grass") == [["left"]]
    assert complements("a dog running from left to right and a cat jumping") == [
        ["left", "right"],
        [],
    ]
    assert complements("a bird flying up and down over a lake") == [["up"]]
    assert complements("a horse galloping across a field") == [["across"]]
    parsed = parse_prompt("a car driving to the right")
    (word,) = parsed.subjects[0].complements
    assert parsed.prompt[word.start : word.end] == "right" and word.lemma == "right"
