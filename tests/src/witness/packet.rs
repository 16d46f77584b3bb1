//! A Linux packet socket on one interface for one EtherType (`AF_PACKET`, `SOCK_RAW`; needs
//! `CAP_NET_RAW`): whole Ethernet frames in and out, as the witness meets Castor hosts on their
//! peer link's segment (packet(7)).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// A packet socket bound to one interface and EtherType.
pub struct PacketSocket {
    fd: OwnedFd,
    /// The interface's MAC.
    pub mac: [u8; 6],
}

/// The MAC of interface `name`, asked through `fd` (SIOCGIFHWADDR, netdevice(7): the
/// socket's network namespace, which sysfs need not show).
fn interface_mac(fd: &OwnedFd, name: &CString) -> io::Result<[u8; 6]> {
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return Err(io::Error::other("interface name too long"));
    }
    for (d, &s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = s as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR reads the name and writes the address into the ifreq given.
    let got = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &raw mut req) };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: after SIOCGIFHWADDR the hardware address is the union's active field.
    let addr = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (d, &s) in mac.iter_mut().zip(&addr.sa_data) {
        *d = s as u8;
    }
    Ok(mac)
}

impl PacketSocket {
    /// Opens a socket for frames of `ethertype` on interface `name`, whose reads time out
    /// after `timeout`.
    pub fn open(name: &str, ethertype: [u8; 2], timeout: Duration) -> io::Result<PacketSocket> {
        let protocol = u16::from_be_bytes(ethertype).to_be();
        let cname = CString::new(name).map_err(|_| io::Error::other("interface name"))?;
        // SAFETY: if_nametoindex reads the NUL-terminated string, which outlives the call.
        let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if index == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a plain socket(2) call; the descriptor is owned below.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(protocol)) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain data; all zeroes is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol;
        addr.sll_ifindex = index as i32;
        // SAFETY: `addr` is a valid sockaddr_ll of the length given, for a socket we own.
        let bound = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast::<libc::sockaddr>(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if bound < 0 {
            return Err(io::Error::last_os_error());
        }
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: libc::suseconds_t::from(timeout.subsec_micros() as i32),
        };
        // SAFETY: SO_RCVTIMEO takes a timeval of the length given.
        let set = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast::<libc::c_void>(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if set < 0 {
            return Err(io::Error::last_os_error());
        }
        let mac = interface_mac(&fd, &cname)?;
        Ok(PacketSocket { fd, mac })
    }

    /// The next frame into `buf` (its length); a timeout is an error of kind `WouldBlock`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is writable for its length; the socket is ours.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        match n {
            n if n >= 0 => Ok(n as usize),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// Sends one whole frame out of the interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is readable for its length; the socket is ours and bound.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        match n {
            n if n >= 0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }
}
