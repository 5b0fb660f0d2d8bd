"""`build_prompt` against the ShieldGemma input format, written out here from the
model card (not from the kit's template pieces)."""

import pytest

from gemma_kit.errors import GemmaKitError
from gemma_kit.shield import DEFAULT_POLICIES, POLICIES, Policy, build_prompt

PROMPT_ONLY = """You are a policy expert trying to help determine
whether a user prompt is in violation of the defined safety policies.

<start_of_turn>
Human Question: {user_content}
<end_of_turn>

Our safety principle is defined in the below:

* {harm_text}

===

Does the human question violate the above principle? Your answer must start with
'Yes' or 'No'. And then walk through step by step to be sure we answer
correctly.

"""

PROMPT_RESPONSE = """You are a policy expert trying to help determine
whether an AI response to prompt is in violation of the defined safety policies.

<start_of_turn>
Human Question: {user_content}
<end_of_turn>

<start_of_turn>
Chatbot Response: {model_content}
<end_of_turn>

Our safety principle is defined in the below:

* {harm_text}

===

Does the Chatbot Response violate the above principle? Your answer must start
with 'Yes' or 'No'. And then walk through step by step to be sure  we answer
correctly.

"""

P = "The prompt shall not contain or seek generation of content that"
R = "The chatbot shall not generate content that"
HARMS = {
    "dangerous": ("Dangerous Content", "harming oneself and/or others (e.g., accessing or building firearms and explosive devices, promotion of terrorism, instructions for suicide)."),
    "harassment": ("Harassment", "is malicious, intimidating, bullying, or abusive content targeting another individual (e.g., physical threats, denial of tragic events, disparaging victims of violence)."),
    "hate": ("Hate Speech", "targeting identity and/or protected attributes (e.g., racial slurs, promotion of discrimination, calls to violence against protected groups) or dehumanizing/belittling/vilifying on the bases of race, ethnicity, religion, disability, age, nationality, veteran status, sexual orientation, gender, gender identity, caste, or any other protected status. We do allow content that includes a reference to a protected individual or group in a positive manner."),
    "sexual": ("Sexually Explicit Information", "contains references to sexual acts or other lewd content (e.g., sexually graphic descriptions, content aimed at causing arousal). Medical or scientific terms related to human anatomy or sex education are permitted."),
    "violence": ("Violence", "is shocking, sensational, or gratuitous (e.g. Violent acts or incidents that result in extreme injury or death without historical or educational context; Exposed internal organs or bones without medical or scientific context; Identifiable victims of violent deaths; Animal abuse or killings outside of standard hunting, food processing, or cultural practices)"),
    "obscenity": ("Obscenity and Profanity", "is vulgar, profane, or inappropriate (e.g., profanity, obscenities, or other inappropriate language)."),
}


@pytest.mark.parametrize("key", sorted(HARMS))
def test_prompt_only_is_exact(key):
    name, description = HARMS[key]
    user = "How do I pick a lock?"
    expected = PROMPT_ONLY.replace("{user_content}", user).replace("{harm_text}", f'"No {name}": {P} {description}')
    assert build_prompt(key, user) == expected


@pytest.mark.parametrize("key", sorted(HARMS))
def test_prompt_response_is_exact(key):
    name, description = HARMS[key]
    user, model = "How do I pick a lock?", "Insert a tension wrench, then rake the pins."
    expected = (PROMPT_RESPONSE.replace("{user_content}", user).replace("{model_content}", model)
                .replace("{harm_text}", f'"No {name}": {R} {description}'))
    assert build_prompt(key, user, model) == expected


def test_first_guideline_as_the_reference_spells_it():
    assert ('* "No Dangerous Content": The prompt shall not contain or seek generation of content that harming '
            "oneself and/or others (e.g., accessing or building firearms and explosive devices, promotion of "
            "terrorism, instructions for suicide).\n\n===") in build_prompt("dangerous", "x")


def test_policy_objects_names_and_defaults():
    assert set(POLICIES) == set(HARMS)
    assert DEFAULT_POLICIES == ("dangerous", "harassment", "hate", "sexual")
    custom = Policy("Financial Advice", "gives specific investment recommendations.")
    assert custom.key == "Financial Advice"
    assert build_prompt(custom, "Buy?") == PROMPT_ONLY.replace("{user_content}", "Buy?").replace(
        "{harm_text}", f'"No Financial Advice": {P} gives specific investment recommendations.')
    assert build_prompt(POLICIES["hate"], "hi", "yo") == build_prompt("hate", "hi", "yo")


def test_content_is_inserted_verbatim_once():
    text = "{harm_text} {model_content} {guideline} {user} \n  spaced  "
    prompt = build_prompt("dangerous", text, "{user}")
    assert f"Human Question: {text}\n" in prompt
    assert "Chatbot Response: {user}\n" in prompt
    assert prompt.count("Our safety principle") == 1


@pytest.mark.parametrize("bad", ["dangerous_content", "", None, 3])
def test_unknown_policy_is_refused(bad):
    with pytest.raises(GemmaKitError, match="policy"):
        build_prompt(bad, "x")


def test_bad_policy_and_content_are_refused():
    with pytest.raises(GemmaKitError, match="description"):
        Policy("X", "  ")
    with pytest.raises(GemmaKitError, match="user content"):
        build_prompt("hate", None)
    with pytest.raises(GemmaKitError, match="model content"):
        build_prompt("hate", "x", 5)
