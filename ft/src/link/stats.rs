//! Counters of a [`super::Link`], for logs and tests. All counters only grow.

/// Statistics of one link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames produced by `poll_transmit`.
    pub frames_sent: u64,
    /// Bytes produced by `poll_transmit`.
    pub bytes_sent: u64,
    /// Frames passed to `on_frame`.
    pub frames_received: u64,
    /// Frames that authenticated and were used.
    pub frames_accepted: u64,
    /// HELLO / HELLO_ACK frames sent.
    pub hellos_sent: u64,
    /// DATA frames sent for the first time.
    pub data_frames_sent: u64,
    /// DATA frames sent again (fast retransmit or timeout).
    pub retransmissions: u64,
    /// Loss detections from selective acknowledgements (each may mark several fragments for
    /// fast retransmit).
    pub fast_retransmits: u64,
    /// Retransmission-timer expiries.
    pub timeouts: u64,
    /// Pure ACK frames sent (including window probes).
    pub acks_sent: u64,
    /// Heartbeat frames sent.
    pub heartbeats_sent: u64,
    /// Frames dropped because they are not well-formed (including authenticated frames with
    /// an invalid body or an impossible acknowledgement).
    pub malformed: u64,
    /// Frames dropped because authentication failed.
    pub forged: u64,
    /// Authenticated-looking frames dropped because their counter was already seen or too old.
    pub replayed: u64,
    /// Frames of another session (another host or an earlier incarnation).
    pub stale_session: u64,
    /// HELLOs that failed authentication.
    pub bad_hellos: u64,
    /// DATA fragments received again (already delivered or buffered).
    pub duplicates: u64,
    /// DATA fragments beyond our advertised window (never happens with a correct peer).
    pub out_of_window: u64,
    /// Fragments received out of order and buffered.
    pub out_of_order: u64,
    /// Messages accepted by `send`.
    pub messages_sent: u64,
    /// Messages acknowledged by the peer.
    pub messages_acked: u64,
    /// Messages delivered to the application (as `Delivered` events).
    pub messages_delivered: u64,
    /// Message bytes delivered.
    pub bytes_delivered: u64,
    /// Messages discarded by reassembly (oversized or inconsistent fragment flags).
    pub messages_discarded: u64,
    /// Calls to `poll_transmit` with a buffer smaller than the MTU.
    pub tx_buffer_too_small: u64,
    /// Largest number of receive slots ever occupied (in-order unconsumed plus out-of-order).
    pub max_recv_slots_used: u64,
    /// Smoothed round-trip time in nanoseconds (0 before the first sample).
    pub srtt: u64,
    /// Current retransmission timeout in nanoseconds.
    pub rto: u64,
    /// Current congestion window in frames.
    pub cwnd: u64,
}
