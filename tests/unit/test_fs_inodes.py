"""The inode table: stable numbers, lookup counts, forget, negative entries, renames."""

from __future__ import annotations

from s3csi.fs.inodes import ROOT_INODE, InodeTable, Kind, State
from s3csi.fs.lookups import DirectoryKnowledge


def table() -> InodeTable:
    return InodeTable("pre/", mtime_ns=0)


def test_the_same_name_keeps_its_inode_number() -> None:
    t = table()
    first = t.upsert(ROOT_INODE, "f", Kind.FILE, valid_until=10, size=1)
    again = t.upsert(ROOT_INODE, "f", Kind.FILE, valid_until=20, size=2)
    assert first is again and again.size == 2 and again.valid_until == 20
    assert t.child(ROOT_INODE, "f") is first


def test_a_name_that_changes_kind_gets_a_new_inode_and_the_old_lives_until_forgotten() -> None:
    t = table()
    old = t.upsert(ROOT_INODE, "x", Kind.FILE, valid_until=1)
    t.remember(old)
    new = t.upsert(ROOT_INODE, "x", Kind.DIRECTORY, valid_until=1)
    assert new.ino != old.ino and not old.linked
    assert t.get(old.ino) is old
    t.forget(old.ino, 1)
    assert t.get(old.ino) is None
    assert t.get(new.ino) is new


def test_forget_drops_what_s3_backs_once_the_kernel_holds_none_and_never_the_root() -> None:
    t = table()
    inode = t.upsert(ROOT_INODE, "f", Kind.FILE, valid_until=1)
    t.remember(inode)
    t.remember(inode)
    t.forget(inode.ino, 1)
    assert t.get(inode.ino) is inode and t.child(ROOT_INODE, "f") is inode  # one reference left
    t.forget(inode.ino, 1)
    assert t.get(inode.ino) is None and t.child(ROOT_INODE, "f") is None  # S3 has it: ask again
    assert len(t) == 1
    t.forget(ROOT_INODE, 100)
    assert t.get(ROOT_INODE) is not None


def test_forget_keeps_entries_only_this_mount_knows() -> None:
    t = table()
    made = t.upsert(ROOT_INODE, "d", Kind.DIRECTORY, valid_until=1, state=State.LOCAL)
    writing = t.upsert(ROOT_INODE, "w", Kind.FILE, valid_until=0, state=State.WRITING)
    remote_dir = t.upsert(ROOT_INODE, "r", Kind.DIRECTORY, valid_until=1)
    inside = t.upsert(remote_dir.ino, "new", Kind.FILE, valid_until=0, state=State.WRITING)
    for inode in (made, writing, remote_dir, inside):
        t.remember(inode)
        t.forget(inode.ino, 1)
    assert [t.child(ROOT_INODE, n) for n in ("d", "w", "r")] == [made, writing, remote_dir]
    assert t.child(remote_dir.ino, "new") is inside  # its directory stays for it


def test_a_forgotten_directory_takes_the_children_nobody_holds_with_it() -> None:
    t = table()
    directory = t.upsert(ROOT_INODE, "d", Kind.DIRECTORY, valid_until=1)
    listed = [t.upsert(directory.ino, f"f{i}", Kind.FILE, valid_until=1) for i in range(3)]
    t.remember(directory)
    t.forget(directory.ino, 1)
    assert t.get(directory.ino) is None and all(t.get(i.ino) is None for i in listed)
    assert len(t) == 1


def test_a_directory_whose_child_the_kernel_holds_stays() -> None:
    t = table()
    directory = t.upsert(ROOT_INODE, "d", Kind.DIRECTORY, valid_until=1)
    held = t.upsert(directory.ino, "f", Kind.FILE, valid_until=1)
    t.remember(directory)
    t.remember(held)
    t.forget(directory.ino, 1)
    assert t.child(ROOT_INODE, "d") is directory and t.child(directory.ino, "f") is held


def test_forgetting_a_listed_child_withdraws_the_listing_s_answers() -> None:
    t = table()
    directory = t.upsert(ROOT_INODE, "d", Kind.DIRECTORY, valid_until=1)
    child = t.upsert(directory.ino, "f", Kind.FILE, valid_until=1)
    directory.listing = DirectoryKnowledge(listed_until=9.0, absent_until=9.0, names=("f",))
    t.remember(child)
    t.forget(child.ino, 1)
    # "f" is no longer in the table, so the listing may not answer "no such entry" for it.
    assert directory.listing == DirectoryKnowledge(names=("f",))


def test_listing_100_000_entries_and_forgetting_them_leaves_the_table_as_it_was() -> None:
    t = table()
    directory = t.upsert(ROOT_INODE, "big", Kind.DIRECTORY, valid_until=1)
    t.remember(directory)
    inos = []
    for i in range(100_000):
        inode = t.upsert(directory.ino, f"f{i:06d}", Kind.FILE, valid_until=1)
        t.remember(inode)
        inos.append(inode.ino)
    assert len(t) == 100_002
    for ino in inos:
        t.forget(ino, 1)
    assert len(t) == 2 and t.children(directory.ino) == []


def test_negative_entries_expire() -> None:
    t = table()
    t.set_negative(ROOT_INODE, "gone", until=5.0)
    assert t.is_negative(ROOT_INODE, "gone", now=4.0)
    assert not t.is_negative(ROOT_INODE, "gone", now=5.0)
    t.set_negative(ROOT_INODE, "gone", until=5.0)
    t.upsert(ROOT_INODE, "gone", Kind.FILE, valid_until=1)
    assert not t.is_negative(ROOT_INODE, "gone", now=1.0)


def test_local_children_follow_the_state() -> None:
    t = table()
    directory = t.upsert(ROOT_INODE, "d", Kind.DIRECTORY, valid_until=1, state=State.LOCAL)
    assert t.local_children(ROOT_INODE) == {"d"}
    writing = t.upsert(directory.ino, "f", Kind.FILE, valid_until=0, state=State.WRITING)
    assert t.local_children(directory.ino) == {"f"}
    t.set_state(writing, State.REMOTE)
    assert t.local_children(directory.ino) == set()


def test_a_listing_does_not_overwrite_a_file_being_written() -> None:
    t = table()
    writing = t.upsert(ROOT_INODE, "f", Kind.FILE, valid_until=0, state=State.WRITING)
    listed = t.upsert(ROOT_INODE, "f", Kind.FILE, valid_until=9, size=123)
    assert listed is writing and writing.state is State.WRITING and writing.size == 0


def test_move_keeps_the_inode_under_its_new_name() -> None:
    t = table()
    d = t.upsert(ROOT_INODE, "d", Kind.DIRECTORY, valid_until=1)
    source = t.upsert(ROOT_INODE, "a", Kind.FILE, valid_until=1)
    target = t.upsert(d.ino, "b", Kind.FILE, valid_until=1)
    t.move(source, d.ino, "b")
    assert t.child(d.ino, "b") is source and source.key == "pre/d/b"
    assert t.child(ROOT_INODE, "a") is None
    assert not target.linked and t.get(target.ino) is None
