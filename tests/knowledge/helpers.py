"""Shared pieces of the knowledge tests: a small handbook of documents and its manifests."""

from __future__ import annotations

from pathlib import Path

from runtime.helpers import manifest

BILLING = """\
# Billing

## Invoices

Invoices are sent on the first working day of each month, by email, as PDF files.
Each invoice lists the seats and the usage of the previous month.

## Refunds

A refund is paid back to the original card within fourteen days of the request.
Refunds for annual plans are prorated by the remaining whole months.
"""

HEATING = """\
# Heat pumps

## Installing

An air-source heat pump needs an outdoor unit on a solid base, clear of snow and leaves.
The installer checks the radiators: low flow temperatures need larger emitters.

## Servicing

Service the outdoor unit once a year: clean the coil and check the refrigerant pressure.
"""

SECURITY = """\
# Security

## Passwords

Passwords are hashed with argon2id and never logged. Rotate the signing keys every ninety days.
"""

DOCS = {"docs/billing.md": BILLING, "docs/heating.md": HEATING, "docs/security/passwords.md": SECURITY}


def handbook(root: Path, embedding: dict, extra: list[str] = (), chunk: dict | None = None,
             sources: tuple[str, ...] = ("docs/**/*.md",)) -> Path:
    """A folder with the docs and a KnowledgeBase ``handbook`` over ``sources`` (``docs/**/*.md``)."""
    for rel, text in DOCS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    spec = {"sources": [{"path": p} for p in sources], "embedding": embedding,
            "chunk": chunk or {"size": 200, "overlap": 40}}
    (root / "kb.yaml").write_text("---\n".join([manifest("KnowledgeBase", "handbook", spec), *extra]))
    return root


def line_of(text: str, needle: str) -> int:
    """The 1-based line of ``needle`` in ``text``."""
    for number, line in enumerate(text.split("\n"), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the text")


def cited_lines(root: Path, hit) -> str:
    """The lines a hit cites, read from the document itself."""
    lines = (root / hit.path).read_text().split("\n")
    return "\n".join(lines[hit.start_line - 1:hit.end_line])


def ready(store, name: str = "handbook"):
    """The KnowledgeBase's Ready condition as apply recorded it."""
    from agentform.specs import ResourceKey

    resource = store.get_resource(ResourceKey("KnowledgeBase", "default", name))
    return next(c for c in resource.conditions if c.type == "Ready")



def tiny_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page (written here, no PDF writer)."""
    count = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(count))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
                       f"/Contents {5 + 2 * i} 0 R >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
