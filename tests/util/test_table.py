from cifar_engine.util.table import aligned


def test_columns_are_padded_to_their_widest_cell_numbers_to_the_right():
    lines = aligned([("run", "acc"), ("a", "0.5"), ("long-name", "0.25")], right={1})
    assert lines == ["run         acc",
                     "a           0.5",
                     "long-name  0.25"]


def test_trailing_blanks_are_stripped():
    assert aligned([("name", "x"), ("a", "")]) == ["name  x", "a"]
