"""The inode table: stable numbers, lookup counts, forget, negative entries, renames."""

from __future__ import annotations

from s3csi.fs.inodes import ROOT_INODE, InodeTable, Kind, State


def table() -> InodeTable:
    return InodeTable("pre/", mtime_ns=0)


def test_the_same_name_keeps_its_inode_number() -> None:
    t = table()
    first = t.upsert(ROOT_INODE, "f", Kind.FILE, key="pre/f", valid_until=10, size=1)
    again = t.upsert(ROOT_INODE, "f", Kind.FILE, key="pre/f", valid_until=20, size=2)
    assert first is again and again.size == 2 and again.valid_until == 20
    assert t.child(ROOT_INODE, "f") is first


def test_a_name_that_changes_kind_gets_a_new_inode_and_the_old_lives_until_forgotten() -> None:
    t = table()
    old = t.upsert(ROOT_INODE, "x", Kind.FILE, key="pre/x", valid_until=1)
    t.remember(old)
    new = t.upsert(ROOT_INODE, "x", Kind.DIRECTORY, key="pre/x/", valid_until=1)
    assert new.ino != old.ino and not old.linked
    assert t.get(old.ino) is old
    t.forget(old.ino, 1)
    assert t.get(old.ino) is None
    assert t.get(new.ino) is new


def test_forget_keeps_linked_inodes_and_never_the_root() -> None:
    t = table()
    inode = t.upsert(ROOT_INODE, "f", Kind.FILE, key="pre/f", valid_until=1)
    t.remember(inode)
    t.remember(inode)
    t.forget(inode.ino, 2)
    assert t.get(inode.ino) is inode  # still named
    t.unlink(ROOT_INODE, "f")
    assert t.get(inode.ino) is None  # no name, no lookups
    t.forget(ROOT_INODE, 100)
    assert t.get(ROOT_INODE) is not None


def test_negative_entries_expire() -> None:
    t = table()
    t.set_negative(ROOT_INODE, "gone", until=5.0)
    assert t.is_negative(ROOT_INODE, "gone", now=4.0)
    assert not t.is_negative(ROOT_INODE, "gone", now=5.0)
    t.set_negative(ROOT_INODE, "gone", until=5.0)
    t.upsert(ROOT_INODE, "gone", Kind.FILE, key="pre/gone", valid_until=1)
    assert not t.is_negative(ROOT_INODE, "gone", now=1.0)


def test_local_children_follow_the_state() -> None:
    t = table()
    directory = t.upsert(ROOT_INODE, "d", Kind.DIRECTORY, key="pre/d/", valid_until=1, state=State.LOCAL)
    assert t.get(ROOT_INODE).local_children == {"d"}  # type: ignore[union-attr]
    writing = t.upsert(directory.ino, "f", Kind.FILE, key="pre/d/f", valid_until=0, state=State.WRITING)
    assert directory.local_children == {"f"}
    t.set_state(writing, State.REMOTE)
    assert directory.local_children == set()


def test_a_listing_does_not_overwrite_a_file_being_written() -> None:
    t = table()
    writing = t.upsert(ROOT_INODE, "f", Kind.FILE, key="pre/f", valid_until=0, state=State.WRITING)
    listed = t.upsert(ROOT_INODE, "f", Kind.FILE, key="pre/f", valid_until=9, size=123)
    assert listed is writing and writing.state is State.WRITING and writing.size == 0


def test_move_keeps_the_inode_under_its_new_name() -> None:
    t = table()
    d = t.upsert(ROOT_INODE, "d", Kind.DIRECTORY, key="pre/d/", valid_until=1)
    source = t.upsert(ROOT_INODE, "a", Kind.FILE, key="pre/a", valid_until=1)
    target = t.upsert(d.ino, "b", Kind.FILE, key="pre/d/b", valid_until=1)
    t.move(source, d.ino, "b", "pre/d/b")
    assert t.child(d.ino, "b") is source and source.key == "pre/d/b"
    assert t.child(ROOT_INODE, "a") is None
    assert not target.linked and t.get(target.ino) is None
