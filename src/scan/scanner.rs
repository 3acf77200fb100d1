//! The scanner: reading threads (one object each, or a large object split
//! between decompression and evaluation) hand their findings and state
//! batches over bounded channels to the one storing thread, which writes
//! them in input order; `Scanner` runs it over a list of inputs.

use super::*;

/// What a reading thread sends the storing thread about one object.
pub(super) enum Message<'e> {
    /// Single-event findings, in record order.
    Findings(Vec<Encoded>),
    /// A batch of a very large object's state to flush now (taken from
    /// the reading thread's session, which goes on gathering: see
    /// [`Session::take_batch`]); the storing thread answers on the channel
    /// once it is written (or given up).
    Flush(Session<'e>, SyncSender<()>),
    /// The object was read.
    End(ObjectRead<'e>),
    /// The input could not be opened.
    Unopened(String),
}

/// A reading thread's side of [`Handoff`]: everything goes over the
/// object's bounded channel to the storing thread.
pub(super) struct Sender<'e> {
    tx: SyncSender<Message<'e>>,
    /// The answer to the batch last sent, while it may still be waiting.
    outstanding: Option<Receiver<()>>,
}

impl<'e> Handoff<'e> for Sender<'e> {
    fn findings(&mut self, found: Vec<Encoded>) {
        // The storing thread gone (it stopped early): nothing to do.
        let _ = self.tx.send(Message::Findings(found));
    }

    /// The batch is written while reading goes on: a store error there
    /// fails the object (the storing thread keeps it), so reading need not
    /// wait to know. At most one batch per object is waiting: the next one
    /// is sent once the last is written, so memory stays at two batches.
    fn flush(&mut self, session: &mut Session<'e>) {
        if let Some(last) = self.outstanding.take() {
            // An error: the storing thread gone, or it dropped the batch.
            let _ = last.recv();
        }
        let (written, outstanding) = mpsc::sync_channel(1);
        // The storing thread gone (it stopped early): nothing to do.
        if self
            .tx
            .send(Message::Flush(session.take_batch(), written))
            .is_ok()
        {
            self.outstanding = Some(outstanding);
        }
    }
}

/// One object for a reading thread.
pub(super) struct Job<'e> {
    input: Input,
    object: Option<ObjectRef>,
    tx: SyncSender<Message<'e>>,
}

/// An object in the storing thread's queue, in input order.
pub(super) enum Queued<'e> {
    /// The ledger says it was processed.
    AlreadyDone,
    /// Being read; its messages arrive here.
    Reading(Option<ObjectRef>, Receiver<Message<'e>>),
}

/// Runs the engine over objects and reports findings.
pub struct Scanner<'e> {
    engine: &'e Engine,
    reader: ReaderOptions,
    min_level: Level,
    policy: Policy,
    store: &'e mut dyn Stores,
    rescan: bool,
    fingerprint: Option<String>,
    threads: usize,
    /// Told of every byte read.
    progress: Option<Progress>,
    /// Stateful matches of one object gathered before its state is written
    /// ([`Session::set_flush_after`]).
    flush_after: usize,
    seen: HashSet<u128>,
    /// Counts so far.
    pub stats: ScanStats,
}

impl<'e> Scanner<'e> {
    /// A scanner reporting findings at or above `min_level`, keeping state in `store`.
    pub fn new(
        engine: &'e Engine,
        reader: ReaderOptions,
        min_level: Level,
        policy: Policy,
        store: &'e mut dyn Stores,
    ) -> Self {
        Scanner {
            engine,
            reader,
            min_level,
            policy,
            store,
            rescan: false,
            fingerprint: None,
            threads: 1,
            progress: None,
            flush_after: trailwarden_engine::session::FLUSH_AFTER,
            seen: HashSet::new(),
            stats: ScanStats::default(),
        }
    }

    /// Read objects again even when the ledger says they were processed.
    pub fn rescan(mut self, rescan: bool) -> Self {
        self.rescan = rescan;
        self
    }

    /// Keep `fingerprint` (of the rules and policy) with each object marked
    /// done; an object done with another fingerprint is read again.
    pub fn fingerprint(mut self, fingerprint: String) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }

    /// Read and evaluate up to `threads` objects at once (at least 1).
    /// Findings, counts and stored state are the same whatever the number:
    /// one thread stores everything in input order.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Tell `progress` of every byte read from the inputs, as it is read
    /// (compressed bytes for a gzip file: a file's size in all), from the
    /// thread that reads it.
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Write an object's state every `matches` stateful matches instead of
    /// every [`trailwarden_engine::session::FLUSH_AFTER`] (tests of
    /// mid-object writes on small inputs).
    #[cfg(test)]
    pub(super) fn flush_after(mut self, matches: usize) -> Self {
        self.flush_after = matches;
        self
    }

    fn storing<'s, F>(&'s mut self, emit: &'s mut F) -> Storing<'s, F> {
        Storing {
            outlet: Outlet {
                min_level: self.min_level,
                policy: &self.policy,
                seen: &mut self.seen,
                stats: &mut self.stats,
                emit,
                held: Vec::new(),
            },
            store: &mut *self.store,
            rescan: self.rescan,
            fingerprint: self.fingerprint.as_deref(),
            store_error: None,
        }
    }

    /// Scan `inputs` in order, calling `emit` for each new finding (after it
    /// is stored) and `done` after each object read, with its failure if it
    /// failed (the failure is also in the stats). Objects the ledger says
    /// were processed are counted and skipped. A store error reading the
    /// ledger stops the scan.
    pub fn scan(
        &mut self,
        inputs: &[Input],
        emit: &mut impl FnMut(Encoded),
        done: &mut dyn FnMut(&Input, Option<&ObjectFailure>),
    ) -> Result<(), StoreError> {
        if self.threads <= 1 {
            self.scan_here(inputs, emit, done)
        } else {
            self.scan_parallel(inputs, emit, done)
        }
    }

    /// Every object read and stored on this thread.
    fn scan_here(
        &mut self,
        inputs: &[Input],
        emit: &mut impl FnMut(Encoded),
        done: &mut dyn FnMut(&Input, Option<&ObjectFailure>),
    ) -> Result<(), StoreError> {
        let (engine, options) = (self.engine, self.reader.clone());
        let flush_after = self.flush_after;
        let progress = self.progress.clone();
        let mut storing = self.storing(emit);
        for input in inputs {
            let object = match input {
                Input::File(path) => file_ref(path),
                Input::Stdin => None,
            };
            if storing.skip(object.as_ref())? {
                passed_over(input, progress.as_ref());
                continue;
            }
            let name = input.name();
            let reader = match open(input, progress.as_ref()) {
                Ok(reader) => reader,
                Err(reason) => {
                    let failure = storing.unopened(&name, reason);
                    done(input, Some(&failure));
                    continue;
                }
            };
            let read = read_one(
                engine,
                &options,
                object.as_ref(),
                reader,
                &mut storing,
                (false, flush_after),
            );
            let result = storing.finish(&name, object.as_ref(), read);
            done(input, result.as_ref().err());
        }
        Ok(())
    }

    /// Objects read and evaluated by `threads` reading threads, each with
    /// its own session; this thread takes their findings and sessions one
    /// object after the other in input order, and stores them exactly as
    /// [`Scanner::scan_here`] does. At most two objects per reading thread
    /// are in flight, each with a bounded queue.
    fn scan_parallel(
        &mut self,
        inputs: &[Input],
        emit: &mut impl FnMut(Encoded),
        done: &mut dyn FnMut(&Input, Option<&ObjectFailure>),
    ) -> Result<(), StoreError> {
        let (engine, options, threads) = (self.engine, self.reader.clone(), self.threads);
        let flush_after = self.flush_after;
        let progress = self.progress.clone();
        let progress = progress.as_ref();
        let lookahead = threads * 2;
        // A core to spare for inflating each input.
        let pipelined = inputs.len() * 2 <= threads;
        let mut storing = self.storing(emit);
        std::thread::scope(|scope| {
            let (jobs, queue) = mpsc::channel::<Job<'_>>();
            let queue = Arc::new(Mutex::new(queue));
            for _ in 0..threads {
                let queue = Arc::clone(&queue);
                let options = &options;
                scope.spawn(move || loop {
                    let job = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let reader = match open(&job.input, progress) {
                        Ok(reader) => reader,
                        Err(reason) => {
                            let _ = job.tx.send(Message::Unopened(reason));
                            continue;
                        }
                    };
                    let mut sender = Sender {
                        tx: job.tx,
                        outstanding: None,
                    };
                    let read = read_one(
                        engine,
                        options,
                        job.object.as_ref(),
                        reader,
                        &mut sender,
                        (pipelined, flush_after),
                    );
                    let _ = sender.tx.send(Message::End(read));
                });
            }
            let mut pending: VecDeque<(&Input, Queued<'_>)> = VecDeque::new();
            let mut next = inputs.iter();
            loop {
                while pending.len() < lookahead {
                    let Some(input) = next.next() else { break };
                    let object = match input {
                        Input::File(path) => file_ref(path),
                        Input::Stdin => None,
                    };
                    if storing.ledger(object.as_ref())? == LedgerEntry::Done {
                        passed_over(input, progress);
                        pending.push_back((input, Queued::AlreadyDone));
                        continue;
                    }
                    let (tx, rx) = mpsc::sync_channel(OBJECT_QUEUE);
                    jobs.send(Job {
                        input: input.clone(),
                        object: object.clone(),
                        tx,
                    })
                    .expect("reading threads run until the job queue closes");
                    pending.push_back((input, Queued::Reading(object, rx)));
                }
                let Some((input, queued)) = pending.pop_front() else {
                    break;
                };
                let (object, rx) = match queued {
                    Queued::AlreadyDone => {
                        storing.outlet.stats.already_done += 1;
                        continue;
                    }
                    Queued::Reading(object, rx) => (object, rx),
                };
                // An earlier input of this scan (the same file named twice)
                // may have been marked done since this one was queued.
                if storing.skip(object.as_ref())? {
                    drain(rx);
                    continue;
                }
                let name = input.name();
                for message in rx {
                    match message {
                        Message::Findings(found) => Handoff::findings(&mut storing, found),
                        Message::Flush(mut batch, written) => {
                            storing.write_batch(&mut batch);
                            let _ = written.send(());
                        }
                        Message::Unopened(reason) => {
                            let failure = storing.unopened(&name, reason);
                            done(input, Some(&failure));
                            break;
                        }
                        Message::End(read) => {
                            let result = storing.finish(&name, object.as_ref(), read);
                            done(input, result.as_ref().err());
                            break;
                        }
                    }
                }
            }
            // Closing the job queue ends the reading threads.
            drop(jobs);
            Ok(())
        })
    }
}

/// Let an object's reading finish without storing anything of it.
pub(super) fn drain(rx: Receiver<Message<'_>>) {
    for message in rx {
        match message {
            Message::End(_) | Message::Unopened(_) => break,
            Message::Findings(_) | Message::Flush(..) => {}
        }
    }
}
