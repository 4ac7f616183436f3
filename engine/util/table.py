"""Plain-text tables: columns padded to their widest cell, two spaces apart."""


def aligned(rows, right=()):
    """The lines of `rows` (sequences of str, the header first) as aligned columns, trailing
    blanks stripped; the columns whose index is in `right` are aligned right (numbers)."""
    rows = [list(row) for row in rows]
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return ["  ".join(cell.rjust(w) if k in right else cell.ljust(w)
                      for k, (cell, w) in enumerate(zip(row, widths))).rstrip()
            for row in rows]
