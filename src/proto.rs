//! Wire protocols. `h1` is the project's own HTTP/1.1 framing on `httparse`; `io` holds
//! the owned-buffer read buffer the framing reads from. Nothing here knows about
//! routes or upstream choice: it turns bytes into heads and bodies and back.

pub mod h1;
pub mod h2;
pub mod head;
pub mod io;
pub mod sink;
pub mod tls;
