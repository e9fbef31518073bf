HELP = """List the models shipped with the package and what they were trained on.

Use a name with `egopressdiff predict --checkpoint NAME`."""


def add_arguments(p):
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> int:
    import json

    from egopressdiff.shipped import SHIPPED_MODEL_NAMES, model_card, shipped_models

    ships = shipped_models()
    rows = []
    for name in sorted(set(SHIPPED_MODEL_NAMES) | set(ships)):
        card = model_card(ships[name]) if name in ships else {}
        rows.append({"name": name, "installed": name in ships, **card})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        status = "" if r["installed"] else "  (not installed in this build)"
        print(f"{r['name']}{status}")
        for key in ("description", "trained_on", "training", "metrics"):
            if key in r:
                val = r[key] if isinstance(r[key], str) else json.dumps(r[key])
                print(f"    {key}: {val}")
    return 0
