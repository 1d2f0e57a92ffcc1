"""A short chaos run in CI: kills of the DB manager and of MariaDB lose and duplicate nothing."""

from pathlib import Path

from chaos_dbmanager import main


def test_nothing_lost_nothing_duplicated_across_kills(capsys: object) -> None:
    pex = Path("katib-db-manager.pex").absolute()
    status = main(
        ["--db-manager-pex", str(pex), "--seconds", "12", "--kill-every", "4", "--processes", "2", "--threads", "8"]
    )
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "missing (acknowledged, not stored): 0" in out
    assert "duplicated (stored more than once): 0" in out
    assert out.count("SIGKILL db-manager") == 2
    assert "SIGKILL MariaDB" in out
    assert status == 0
