//! Messages into the loop: how other threads hand work back to a reactor.
//!
//! A [`Mailbox`] is a cloneable, `Send` handle to one reactor. Another thread
//! (a worker pool doing slow work, a timer thread, another reactor) posts a
//! message: a closure that the reactor's thread runs with the handler and a
//! [`LoopCtx`], so it can send to any connection by [`ConnId`], close
//! connections and set timers, exactly as a hook can. The message is typed by
//! the handler: it can only be posted to a server running that handler, and
//! it reaches the handler's own fields and methods without a cast.
//!
//! Posting never blocks and never grows memory without bound: the queue holds
//! at most `Config::mailbox_capacity` messages, and a post to a full queue
//! is [`Refused`] with [`PostError::Full`], handing the message back: the
//! sender decides to retry it later, drop it, or slow its own producers down. The reactor is woken with mio's `Waker`
//! only when the queue goes from empty to non-empty, and runs at most a
//! batch of messages per turn, so a flood of posts cannot starve sockets.
//!
//! A message may arrive after the connection it is about has closed. Its
//! [`ConnId`] then names nothing ([`LoopCtx::is_open`] is `false`, and
//! [`LoopCtx::send_to`] returns `false`), never a newcomer in the same slot.
//!
//! [`ConnId`]: crate::ConnId

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use mio::Waker;

use crate::handler::{Handler, LoopCtx};

/// A message: run on the reactor's thread with the handler and a loop context.
pub type Message<H> = Box<dyn for<'a> FnOnce(&mut H, &mut LoopCtx<'a, H>) + Send>;

/// A handle to post messages to one reactor from any thread.
///
/// # Examples
///
/// A worker thread computes a reply and hands it back to the loop, which
/// sends it to the connection that asked (if it is still there):
///
/// ```
/// use frameloop::{Client, Config, Ctx, Handler};
///
/// struct Offload;
///
/// impl Handler for Offload {
///     type Conn = ();
///     fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
///         let (id, job, mailbox) = (ctx.id(), payload.to_vec(), ctx.mailbox());
///         std::thread::spawn(move || {
///             let answer = job.iter().rev().copied().collect::<Vec<u8>>(); // "slow" work
///             let _ = mailbox.post(move |_handler, ctx| {
///                 ctx.send_to(id, &answer); // false if the client left meanwhile
///             });
///         });
///     }
/// }
///
/// let server = frameloop::spawn(Config::loopback(), Offload)?;
/// let mut client = Client::connect(server.addr())?;
/// assert_eq!(client.request(b"abc")?, b"cba");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Mailbox<H: Handler> {
    queue: SyncSender<Message<H>>,
    wake: Arc<Wake>,
}

impl<H: Handler> Clone for Mailbox<H> {
    fn clone(&self) -> Self {
        Mailbox {
            queue: self.queue.clone(),
            wake: self.wake.clone(),
        }
    }
}

impl<H: Handler> fmt::Debug for Mailbox<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox").finish_non_exhaustive()
    }
}

/// A message that could not be posted, and why. [`Refused::retry`] posts the
/// same message again.
pub struct Refused<H: Handler> {
    reason: PostError,
    message: Message<H>,
}

impl<H: Handler> Refused<H> {
    pub(crate) fn new(reason: PostError, message: Message<H>) -> Refused<H> {
        Refused { reason, message }
    }

    /// Why it was refused.
    pub fn reason(&self) -> PostError {
        self.reason
    }

    /// Posts the message again (to the same or another mailbox).
    pub fn retry(self, mailbox: &Mailbox<H>) -> Result<(), Refused<H>> {
        mailbox.post_boxed(self.message)
    }
}

impl<H: Handler> fmt::Debug for Refused<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refused")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl<H: Handler> fmt::Display for Refused<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "message not posted: {}", self.reason)
    }
}

impl<H: Handler> std::error::Error for Refused<H> {}

/// Why a message could not be posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// The reactor's queue is full: it is behind. Try again later, or drop.
    #[error("the reactor's mailbox is full")]
    Full,
    /// The reactor has stopped; nothing will run the message.
    #[error("the reactor has stopped")]
    Stopped,
}

impl<H: Handler> Mailbox<H> {
    /// Posts a message; the reactor runs it on its own thread, soon.
    pub fn post(
        &self,
        message: impl for<'a> FnOnce(&mut H, &mut LoopCtx<'a, H>) + Send + 'static,
    ) -> Result<(), Refused<H>> {
        self.post_boxed(Box::new(message))
    }

    /// The reactor's waker (shutdown wakes it directly).
    pub(crate) fn waker(&self) -> Arc<Waker> {
        self.wake.waker.clone()
    }

    fn post_boxed(&self, message: Message<H>) -> Result<(), Refused<H>> {
        let (reason, message) = match self.queue.try_send(message) {
            Ok(()) => {
                self.wake.wake();
                return Ok(());
            }
            Err(TrySendError::Full(message)) => (PostError::Full, message),
            Err(TrySendError::Disconnected(message)) => (PostError::Stopped, message),
        };
        Err(Refused { reason, message })
    }
}

/// The reactor's end of its mailbox.
pub(crate) struct Inbox<H: Handler> {
    queue: Receiver<Message<H>>,
    wake: Arc<Wake>,
}

impl<H: Handler> fmt::Debug for Inbox<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox").finish_non_exhaustive()
    }
}

impl<H: Handler> Inbox<H> {
    /// Called when the waker fired: messages posted from now on wake the
    /// loop again. (Cleared before the queue is read, so a message posted
    /// while it is read either is read now or wakes the loop once more.)
    pub fn woken(&self) {
        self.wake.posted.store(false, Ordering::SeqCst);
    }

    /// The next message, if any.
    pub fn next(&self) -> Option<Message<H>> {
        // Empty, or every sender gone (then it stays empty): nothing to run.
        self.queue.try_recv().ok()
    }
}

/// Wakes the reactor once per batch of posts, not once per post: a wake is
/// a syscall, a flag is not.
pub(crate) struct Wake {
    waker: Arc<Waker>,
    posted: AtomicBool,
}

impl Wake {
    fn wake(&self) {
        if !self.posted.swap(true, Ordering::SeqCst)
            && let Err(e) = self.waker.wake()
        {
            log::warn!("cannot wake the event loop: {e}");
        }
    }
}

/// A reactor's mailbox: the handle to give out, and the end to read.
pub(crate) fn mailbox<H: Handler>(waker: Arc<Waker>, capacity: usize) -> (Mailbox<H>, Inbox<H>) {
    let (queue, inbox) = sync_channel(capacity);
    let wake = Arc::new(Wake {
        waker,
        posted: AtomicBool::new(false),
    });
    (
        Mailbox {
            queue,
            wake: wake.clone(),
        },
        Inbox { queue: inbox, wake },
    )
}
