"""The examples' offline text: real English prose, the same on every run."""

from examples import corpus


def test_the_text_is_prose_without_grammar_or_code():
    text = corpus.english_text()
    assert len(text) > 200_000
    assert "::=" not in text  # grammar productions are indented in the source, and dropped
    assert "Assert statements are a convenient way to insert debugging assertions" in text
    assert not any(line.startswith(" ") for line in text.splitlines())


def test_the_text_is_the_same_on_every_call():
    assert corpus.english_text() == corpus.english_text()


def test_words_are_lower_case_with_punctuation_kept():
    assert corpus.words('The "assert" statement, simply.') == ["the", "assert", "statement", ",", "simply", "."]


def test_the_vocabulary_reserves_padding_and_unknown_then_orders_by_frequency():
    tokens = ["b", "a", "c", "a", "b", "a", "d"]
    assert corpus.vocabulary(tokens, size=5) == ["<pad>", "<unk>", "a", "b", "c"]


def test_the_held_out_part_is_the_contiguous_tail():
    train, held_out = corpus.held_out_split(list(range(100)), held_out_fraction=0.2)
    assert train == list(range(80)) and held_out == list(range(80, 100))
