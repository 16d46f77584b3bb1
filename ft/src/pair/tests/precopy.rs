// SPDX-License-Identifier: MIT OR Apache-2.0
//! Re-protection: pre-copy rounds before the first checkpoint, and the HELLO of a primary
//! whose guest runs already. (The randomized pair simulation in the parent module runs pre-copy
//! rounds too, with kills.)

use super::*;

#[test]
fn precopy_rounds_then_a_checkpoint_leave_the_backup_with_the_stun_contents() {
    let mut ram = SimRam::new();
    let mut primary = Primary::new(&config(4)).expect("primary");
    let mut backup = Backup::new(PAGES);
    let mut backup_ram = BackupRam((0..PAGES).map(|_| Box::new([0xAA; PAGE_SIZE])).collect());
    let deliver = |primary: &mut Primary, backup: &mut Backup, to: &mut BackupRam| {
        let mut applied = Vec::new();
        while let Some(m) = primary.next_message() {
            if let Message::Stream(bytes) = Message::decode(&m).expect("decodes") {
                applied.extend(backup.on_stream(bytes, to).expect("applies"));
            }
        }
        applied
    };
    for gfn in 0..PAGES {
        ram.pages[gfn as usize].fill(gfn as u8);
    }
    let _ = ram.harvest();
    // Round 0 is the full copy; the guest writes pages 3 and 5 after they were read.
    let round = primary.precopy(&mut ram, &[]).expect("round 0");
    assert_eq!((round.epoch, round.pages, round.full), (0, PAGES, true));
    primary.pump_sender(&mut ram, 10).expect("pump");
    guest_write(&mut primary, &mut ram, 3, 33);
    guest_write(&mut primary, &mut ram, 5, 55);
    primary.pump_sender(&mut ram, usize::MAX).expect("pump");
    while !primary.sender_idle() {
        deliver(&mut primary, &mut backup, &mut backup_ram);
        primary.pump_sender(&mut ram, usize::MAX).expect("pump");
    }
    let applied = deliver(&mut primary, &mut backup, &mut backup_ram);
    assert_eq!(applied.len(), 1);
    assert!(!applied[0].checkpoint, "a pre-copy round is no checkpoint");
    assert_eq!(backup.last_applied(), None, "nothing to resume from yet");
    assert_ne!(
        backup_ram.0[3], ram.pages[3],
        "page 3 changed after it was read"
    );
    // Round 1: what the guest wrote during round 0.
    let dirty = ram.harvest();
    assert_eq!(dirty, [3, 5]);
    let round = primary.precopy(&mut ram, &dirty).expect("round 1");
    assert_eq!((round.epoch, round.pages, round.full), (1, 2, false));
    assert_eq!(
        primary.precopy(&mut ram, &[]).unwrap_err(),
        PrimaryError::SenderBusy
    );
    while !primary.sender_idle() {
        primary.pump_sender(&mut ram, usize::MAX).expect("pump");
    }
    guest_write(&mut primary, &mut ram, 7, 77);
    // The first checkpoint: the page written during round 1, and the state.
    let snapshot = ram.snapshot();
    let dirty = ram.harvest();
    let report = primary
        .stun(&mut ram, &dirty, 9, b"vcpu", b"devices")
        .expect("first checkpoint");
    assert_eq!((report.epoch, report.dirty), (2, 1));
    assert_eq!(
        primary.precopy(&mut ram, &[]).unwrap_err(),
        PrimaryError::NoPrecopy("the guest is protected already")
    );
    while !primary.sender_idle() {
        primary.pump_sender(&mut ram, usize::MAX).expect("pump");
        ram.sync_tlb();
    }
    let applied = deliver(&mut primary, &mut backup, &mut backup_ram);
    assert_eq!(
        applied
            .iter()
            .map(|a| (a.epoch, a.checkpoint))
            .collect::<Vec<_>>(),
        [(1, false), (2, true)]
    );
    assert_eq!(digest_of(&backup_ram.0), digest_of(&snapshot));
    let sent = primary.on_ack(2, |_| {}).expect("ack").expect("epoch 2");
    assert_eq!(sent.digest, Some(digest_of(&snapshot)));
    let t = backup.takeover().expect("resumable");
    assert_eq!((t.epoch, t.vcpu.as_slice()), (2, &b"vcpu"[..]));
}

#[test]
fn precopy_needs_a_dirty_log_and_the_backup_refuses_stateless_epochs_after_a_checkpoint() {
    let mut ram = SimRam::new();
    let mut tracking = Primary::new(&PrimaryConfig {
        track_writes: true,
        ..config(4)
    })
    .expect("primary");
    assert!(matches!(
        tracking.precopy(&mut ram, &[]),
        Err(PrimaryError::NoPrecopy(_))
    ));
    // A stateless epoch after a checkpoint: a primary that lies, refused.
    let mut primary = Primary::new(&config(4)).expect("primary");
    primary
        .stun(&mut ram, &[], 0, b"v", b"d")
        .expect("checkpoint 0");
    while !primary.sender_idle() {
        primary.pump_sender(&mut ram, usize::MAX).expect("pump");
    }
    let mut liar = Primary::new(&config(4)).expect("primary");
    liar.precopy(&mut ram, &[]).expect("round 0");
    let _ = liar.next_message(); // its stream header; the backup has the first's
    while !liar.sender_idle() {
        liar.pump_sender(&mut ram, usize::MAX).expect("pump");
    }
    let mut backup = Backup::new(PAGES);
    let mut backup_ram = BackupRam((0..PAGES).map(|_| Box::new([0; PAGE_SIZE])).collect());
    let mut feed = |m: Vec<u8>, backup: &mut Backup| match Message::decode(&m) {
        Ok(Message::Stream(bytes)) => backup.on_stream(bytes, &mut backup_ram).map(|_| ()),
        _ => Ok(()),
    };
    while let Some(m) = primary.next_message() {
        feed(m, &mut backup).expect("checkpoint 0 applies");
    }
    assert_eq!(backup.last_applied(), Some(0));
    let mut epoch1 = Vec::new();
    while let Some(m) = liar.next_message() {
        epoch1.push(m);
    }
    // The liar's round is epoch 0: renumbering is beyond it, so it is refused as out of order
    // or as missing its state; either way the backup keeps epoch 0.
    let refused = epoch1.into_iter().find_map(|m| feed(m, &mut backup).err());
    assert!(refused.is_some());
    assert_eq!(backup.last_applied(), Some(0));
}

#[test]
fn a_running_primary_keeps_its_guest_cpu_and_a_backup_that_cannot_resume_it_is_refused() {
    let running = Hello {
        version: PAIR_VERSION,
        role: Role::Primary,
        epoch_min_ms: 5,
        epoch_max_ms: 100,
        guest_ram: 64 << 20,
        guest_image: [1; 32],
        cpu: CpuModel::intersect(&server(), &older()).unwrap(),
        running: true,
        witness: false,
    };
    let bigger = Hello {
        role: Role::Backup,
        cpu: server(),
        running: false,
        ..running
    };
    // The guest keeps the model it runs with, on both sides, though the new backup offers more.
    assert_eq!(running.check(&bigger), Ok(running.cpu));
    assert_eq!(bigger.check(&running), Ok(running.cpu));
    // A backup that lacks what the guest was offered cannot take it, whatever it offers.
    let server_guest = Hello {
        cpu: server(),
        ..running
    };
    let weaker = Hello {
        cpu: older(),
        ..bigger
    };
    for (ours, theirs) in [(&server_guest, &weaker), (&weaker, &server_guest)] {
        assert!(
            matches!(
                ours.check(theirs),
                Err(PairError::Cpu(CpuMismatch::Resume {
                    host: Role::Backup,
                    ..
                }))
            ),
            "both sides refuse"
        );
    }
    let bytes = Message::Hello(Box::new(running)).encode();
    assert_eq!(
        Message::decode(&bytes),
        Ok(Message::Hello(Box::new(running)))
    );
}
