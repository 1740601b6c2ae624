"""Pairing and the secret stores: the user-confirmed flow end to end, the 0600 file fallback for real, and the
keyring path with keyring's real plaintext backend (keyrings.alt) — no mock keyrings."""

from __future__ import annotations

import asyncio
import os
import stat
from dataclasses import replace
from pathlib import Path

import keyring
import pytest
from keyrings.alt.file import PlaintextKeyring

from ally.server.client import DaemonError, HandshakeRefused
from ally.server.errors import ErrorCode
from ally.server.limits import Limits
from ally.server.pairing import PairingRegistry, token_digest
from ally.server.store import STORE_ENV, FileStore, KeyringStore, StoreError, default_store

from daemon_fakes import ORIGIN, OTHER_ORIGIN, PNG, Daemon, start_daemon


async def _pair(daemon: Daemon, origin: str) -> tuple[str, dict[str, object]]:
    """Drive the flow like the extension and the user: pair.begin, then `pair.confirm` from a local tool."""
    pairing = await daemon.connect(origin=origin, token=None, pairing=True)
    assert pairing.hello["session"] == {"kind": "pairing", "origin": origin}
    begun = (await pairing.request("pair.begin", {"name": "Ally for Chrome"})).result
    assert len(begun["code"]) == 6 and begun["expires_in_s"] == daemon.limits.pairing_code_ttl_s
    async with await daemon.local() as local:
        assert local.hello["session"] == {"kind": "local", "origin": None}
        confirmed = (await local.request("pair.confirm", {"code": begun["code"]})).result
    assert confirmed == {"origin": origin, "name": "Ally for Chrome"}
    async with asyncio.timeout(3):
        while not any(m == "pair.completed" for m, _ in pairing.notifications):
            await asyncio.sleep(0.01)
    params = next(p for m, p in pairing.notifications if m == "pair.completed")
    async with asyncio.timeout(3):
        while pairing.close_code is None:
            await asyncio.sleep(0.01)
    assert pairing.close_code == 1000
    await pairing.close()
    return str(params["token"]), params


@pytest.mark.asyncio
async def test_pairing_flow_gives_a_working_token(daemon: Daemon) -> None:
    with pytest.raises(HandshakeRefused):
        await daemon.connect(origin=OTHER_ORIGIN)
    token, params = await _pair(daemon, OTHER_ORIGIN)
    assert params["origin"] == OTHER_ORIGIN
    stored = daemon.registry.pairings()[OTHER_ORIGIN]
    assert stored.token_sha256 == token_digest(token) and token not in daemon.store.path.read_text()
    async with await daemon.connect(origin=OTHER_ORIGIN, token=token) as client:
        reply = await client.request("protect.image", {"image": {"bytes": len(PNG)}}, binary=PNG)
        assert reply.binary is not None
    # Re-pairing replaces the old token.
    token2, _ = await _pair(daemon, OTHER_ORIGIN)
    await asyncio.sleep(1.1)  # the daemon re-reads pairings at most once a second
    with pytest.raises(HandshakeRefused) as info:
        await daemon.connect(origin=OTHER_ORIGIN, token=token)
    assert info.value.code == ErrorCode.TOKEN_INVALID
    await (await daemon.connect(origin=OTHER_ORIGIN, token=token2)).close()
    await daemon.healthy()


@pytest.mark.asyncio
async def test_wrong_pairing_code_and_who_may_confirm(daemon: Daemon) -> None:
    pairing = await daemon.connect(origin=OTHER_ORIGIN, token=None, pairing=True)
    code = (await pairing.request("pair.begin", {})).result["code"]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    async with await daemon.local() as local:
        with pytest.raises(DaemonError) as info:
            await local.request("pair.confirm", {"code": wrong})
        assert info.value.code == ErrorCode.PAIRING_FAILED
    async with await daemon.connect() as extension:  # a paired extension cannot approve other extensions
        with pytest.raises(DaemonError) as info:
            await extension.request("pair.confirm", {"code": code})
        assert info.value.code == ErrorCode.METHOD_NOT_ALLOWED
    with pytest.raises(DaemonError) as info:  # nor can the pairing session approve itself
        await pairing.request("pair.confirm", {"code": code})
    assert info.value.code == ErrorCode.METHOD_NOT_ALLOWED
    await pairing.close()
    assert OTHER_ORIGIN not in daemon.registry.pairings()
    await daemon.healthy()


@pytest.mark.asyncio
async def test_pairing_code_expires(tmp_path: Path, small_limits: Limits) -> None:
    d = await start_daemon(tmp_path, limits=replace(small_limits, pairing_code_ttl_s=0.2))
    try:
        pairing = await d.connect(origin=OTHER_ORIGIN, token=None, pairing=True)
        code = (await pairing.request("pair.begin", {})).result["code"]
        async with asyncio.timeout(3):
            while pairing.close_code is None:
                await asyncio.sleep(0.01)
        assert pairing.close_code == 4000 + ErrorCode.PAIRING_FAILED
        failed = next(p for m, p in pairing.notifications if m == "pair.failed")
        assert failed["error"]["code"] == ErrorCode.PAIRING_FAILED
        await pairing.close()
        async with await d.local() as local:
            with pytest.raises(DaemonError):
                await local.request("pair.confirm", {"code": code})
        await d.healthy()
    finally:
        await d.server.stop()


@pytest.mark.asyncio
async def test_revoked_extension_is_refused(daemon: Daemon) -> None:
    assert daemon.registry.revoke(ORIGIN)
    await asyncio.sleep(1.1)
    with pytest.raises(HandshakeRefused) as info:
        await daemon.connect()
    assert info.value.code == ErrorCode.NOT_PAIRED


# -- the stores ----------------------------------------------------------------------------------------------


def test_file_store_is_private_and_refuses_loose_permissions(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "ally" / "secrets.json")
    registry = PairingRegistry(store)
    token = registry.add(ORIGIN, "x")
    local = registry.local_token(create=True)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert registry.verify(ORIGIN, token) is None and registry.verify(ORIGIN, token + "x") == ErrorCode.TOKEN_INVALID
    assert registry.local_token() == local
    os.chmod(store.path, 0o644)
    with pytest.raises(StoreError, match="chmod 600"):
        PairingRegistry(store).pairings()
    os.chmod(store.path, 0o600)
    store.path.write_text("{not json")
    with pytest.raises(StoreError):
        store.get("pairings")


def test_keyring_store_with_a_real_backend(tmp_path: Path) -> None:
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring_pass.cfg")
    store = KeyringStore(backend)
    assert store.kind == "keyring" and store.secure is False  # a plaintext file is no OS keyring
    registry = PairingRegistry(store)
    token = registry.add(ORIGIN, "Chrome")
    assert backend.get_password("ally", "pairings") is not None
    assert PairingRegistry(KeyringStore(backend)).verify(ORIGIN, token) is None  # persisted in the backend
    assert registry.revoke(ORIGIN) and registry.verify(ORIGIN, token) == ErrorCode.NOT_PAIRED
    store.delete("never-set")  # deleting what is absent is not an error


@pytest.mark.asyncio
async def test_daemon_on_a_keyring_store(tmp_path: Path, small_limits: Limits) -> None:
    from ally.server.app import create_app, start_server
    from ally.server.client import DaemonClient
    from ally.server.engines import Engines

    from daemon_fakes import FakeImageEngine

    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring_pass.cfg")
    store = KeyringStore(backend)
    token = PairingRegistry(store).add(ORIGIN, "Chrome")
    server = await start_server(create_app(Engines(FakeImageEngine()), store, limits=small_limits), 0)
    try:
        async with await DaemonClient.connect(server.port, token=token, origin=ORIGIN) as client:
            status = (await client.request("status")).result
            assert status["pairing"]["store"].startswith("keyring (keyrings.alt.file.PlaintextKeyring)")
            assert (await client.request("protect.image", {"image": {"bytes": len(PNG)}}, binary=PNG)).binary
        local = PairingRegistry(store).local_token()
        assert local is not None
        await (await DaemonClient.connect(server.port, token=local)).close()
    finally:
        await server.stop()


def test_default_store_without_an_os_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This box has no Secret Service: keyring offers only insecure backends, so the 0600 file is used."""
    previous = keyring.get_keyring()
    try:
        plain = PlaintextKeyring()
        plain.file_path = str(tmp_path / "kr.cfg")
        keyring.set_keyring(plain)
        store = default_store(tmp_path)
        assert isinstance(store, FileStore) and store.path == tmp_path / "secrets.json"
        assert "no OS keyring backend" in store.describe()
        from keyring.backends import fail

        keyring.set_keyring(fail.Keyring())
        assert isinstance(default_store(tmp_path), FileStore)
        monkeypatch.setenv(STORE_ENV, "file")
        assert f"{STORE_ENV}=file" in default_store(tmp_path).describe()
    finally:
        keyring.set_keyring(previous)
