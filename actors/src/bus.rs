//! The event bus: fans run events out to sinks, preserving order.
//!
//! Sinks are actors wrapping a callback (the progress bar, the event log). Events
//! reach every sink in the order they were published; [`BusMsg::Flush`] returns once
//! every sink has handled everything published before it.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::{local_message, RunEvent};

/// Messages of the event bus.
pub enum BusMsg {
    /// Publishes an event to every sink.
    Publish(RunEvent),
    /// Adds a sink.
    Subscribe(ActorRef<SinkMsg>),
    /// Replies once every sink has handled every earlier event.
    Flush(RpcReplyPort<()>),
}

/// Messages of an event sink.
pub enum SinkMsg {
    /// An event.
    Event(RunEvent),
    /// Replies once every earlier event is handled.
    Flush(RpcReplyPort<()>),
}

local_message!(BusMsg, SinkMsg);

/// The bus actor.
pub struct EventBus;

impl Actor for EventBus {
    type Msg = BusMsg;
    type State = Vec<ActorRef<SinkMsg>>;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<BusMsg>,
        _args: (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(Vec::new())
    }

    async fn handle(
        &self,
        _myself: ActorRef<BusMsg>,
        msg: BusMsg,
        sinks: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            BusMsg::Publish(event) => {
                // A sink that has stopped is dropped rather than failing the run.
                sinks.retain(|s| s.cast(SinkMsg::Event(event.clone())).is_ok());
            }
            BusMsg::Subscribe(sink) => sinks.push(sink),
            BusMsg::Flush(reply) => {
                for s in sinks.iter() {
                    let _ = s.call(SinkMsg::Flush, Some(Duration::from_secs(30))).await;
                }
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}

/// A callback invoked for each event, in order.
pub type SinkFn = Box<dyn FnMut(&RunEvent) + Send>;

/// An actor that hands each event to a callback.
pub struct EventSink;

impl Actor for EventSink {
    type Msg = SinkMsg;
    type State = SinkFn;
    type Arguments = SinkFn;

    async fn pre_start(
        &self,
        _myself: ActorRef<SinkMsg>,
        f: SinkFn,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(f)
    }

    async fn handle(
        &self,
        _myself: ActorRef<SinkMsg>,
        msg: SinkMsg,
        f: &mut SinkFn,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SinkMsg::Event(e) => f(&e),
            SinkMsg::Flush(reply) => {
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}
