//! The decision logic as a pure state machine: round verdicts (with the lane's diagnosis of
//! the failing layer), kernel changes, heal-step ends and the time go in, actions come out
//! (`poll_action`). It owns hysteresis (fail-after / up-after), the round schedule, the
//! escalation ladder and the backoff between heal attempts, and applies the per-layer policy:
//! a layer set to `ignore` fails no round, `report` makes an outage without heal steps, `heal`
//! climbs the ladder (no-carrier only once `carrier-wait` has passed since the carrier went),
//! `link-up` sets an administratively downed interface up at once; when the failing layer
//! changes during an outage the ladder starts over. It never reads a clock and does no I/O:
//! the caller hands it `now` (monotonic) and acts on what it returns, so the tests below drive
//! hours of virtual time in microseconds.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::config::human;
use crate::diagnose::{self, Act, Layer};
use crate::mono::{self, Instant};

/// What the state machine needs from the configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    pub interval: Duration,
    /// How long a round waits for replies; also the round spacing during an outage.
    pub timeout: Duration,
    pub fail_after: u32,
    pub up_after: u32,
    /// Number of steps on the heal ladder (at least 1).
    pub steps: usize,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// What a failure of each layer may do.
    pub layers: diagnose::Policy,
    /// No-carrier heals only once the carrier has been gone this long.
    pub carrier_wait: Duration,
    /// The lane's family (`ipv4`), first word of every reason; empty: none.
    pub family: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No round has ended yet.
    Starting,
    Up,
    /// Some rounds failed in a row, fewer than fail-after.
    Suspect,
    /// In an outage, waiting for the backoff before the next heal attempt.
    Down,
    /// In an outage, a heal step is running.
    Healing,
    /// In an outage, good rounds in a row, fewer than up-after.
    Recovering,
}

impl State {
    /// How bad it is, for an interface whose lanes differ (its state and layer are the worst
    /// lane's): healing > down > recovering > suspect > starting > up.
    pub fn badness(self) -> u8 {
        match self {
            State::Up => 0,
            State::Starting => 1,
            State::Suspect => 2,
            State::Recovering => 3,
            State::Down => 4,
            State::Healing => 5,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Starting => "starting",
            State::Up => "up",
            State::Suspect => "suspect",
            State::Down => "down",
            State::Healing => "healing",
            State::Recovering => "recovering",
        })
    }
}

/// The outcome of one probe round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub good: bool,
    pub answered: usize,
    pub targets: usize,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} targets answered", self.answered, self.targets)
    }
}

/// A round's verdict with the lane's diagnosis of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub verdict: Verdict,
    /// The failing layer (`Ok` for a good round); None: not diagnosed (every failure heals).
    pub layer: Option<Layer>,
    /// The failure rests on targets that have never answered since start (not armed): it is
    /// reported, not healed.
    pub unarmed: bool,
    /// The lane's gateway, for the reason text.
    pub gateway: Option<IpAddr>,
}

impl Round {
    /// A verdict without a diagnosis.
    pub fn plain(verdict: Verdict) -> Round {
        Round {
            verdict,
            layer: None,
            unarmed: false,
            gateway: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start a probe round now, and report its end with `round_ended` (or `round_skipped`).
    StartRound,
    /// The state changed; log it. `attempt`: heal attempts in the current outage as of this
    /// change (for an outage that just ended: how many it took).
    Transition {
        from: State,
        to: State,
        reason: String,
        attempt: u32,
    },
    /// Run ladder step `step` (0-based) as attempt `attempt` (1-based); report its end with
    /// `heal_ended`.
    RunHeal {
        attempt: u32,
        step: usize,
        reason: String,
    },
    /// Set the interface administratively up now (`on-admin-down = link-up`): at once on the
    /// kernel's event (`attempt` 0), or as attempt `attempt` of an admin-down outage; an
    /// attempt's end is reported with `heal_ended`.
    LinkUp { attempt: u32 },
    /// Something to log that is no state change (the ladder starting over).
    Announce(String),
}

/// An input of the state machine (`handle_event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The round asked for with `StartRound` ended with this verdict.
    RoundEnded(Verdict),
    /// The round could not run, for `reason` (`interface nh0 is gone`): it counts as a
    /// failed round, so the heal ladder (whose steps may re-create the interface) runs.
    RoundImpossible {
        reason: String,
    },
    /// The round could not run for a passing reason: no verdict, the next one an interval on.
    RoundSkipped,
    /// The heal step of the current attempt has ended.
    HealEnded,
    /// The kernel reported a change that can break reachability (carrier lost, interface
    /// gone, default route changed...): confirm it with a round now.
    KernelChanged,
    /// The round asked for with `StartRound` ended, with the lane's diagnosis.
    RoundJudged(Round),
    /// The carrier went (IFF_LOWER_UP cleared): `carrier-wait` counts from now.
    CarrierLost,
    CarrierRegained,
    /// The interface was set administratively down, not by a heal step of ours.
    AdminDown,
}

#[derive(Debug)]
pub struct Decider {
    policy: Policy,
    /// When the last round started (confirming rounds keep a timeout's distance from it).
    last_round: Option<Instant>,
    /// Set while a round that could not run (`Input::RoundImpossible`) is being counted: why.
    impossible: Option<String>,
    state: State,
    since: Instant,
    /// Failed / good rounds in a row.
    fails: u32,
    goods: u32,
    /// When the first round of the current failure streak started.
    streak_start: Option<Instant>,
    /// Why the current outage began (NETHEAL_REASON for every attempt in it).
    outage_reason: String,
    outage_start: Option<Instant>,
    attempts: u32,
    heals: u64,
    round_start: Option<Instant>,
    next_round: Option<Instant>,
    /// While in an outage and not healing: the earliest time for the next attempt.
    next_heal: Option<Instant>,
    rng: u64,
    /// `policy.interval` and `policy.timeout` in nanoseconds (`mono::nanos`), worked out
    /// once for the round schedule every round end makes (issue 9).
    interval_ns: Option<u64>,
    timeout_ns: Option<u64>,
    actions: VecDeque<Action>,
    /// A `StartRound` follows what `actions` holds: kept out of the queue while it is the
    /// last action, so that a healthy round (whose only action it is) makes no push and pop
    /// (issue 9). `push` puts it in the queue first when another action comes after it.
    start_queued: bool,
    /// Heals are held back (boot grace, an inhibit, no good round yet): rounds and states go
    /// on, attempts wait without being used up.
    held: bool,
    /// An attempt came due while held: it starts when the hold ends.
    heal_pending: bool,
    /// The last round's layer (`Ok` when good).
    last_layer: Layer,
    /// The layer the current outage's ladder is for.
    outage_layer: Option<Layer>,
    /// The layers whose ladder has started in the current outage (a bit per layer): each
    /// starts over once, so a diagnosis that flaps between layers still escalates.
    started: u16,
    /// Whether the current outage may run heal steps (its layer heals and its evidence is
    /// armed); while not, it is reported only and `next_heal` waits.
    healable: bool,
    /// Since when the carrier has been gone, as far as the kernel or the rounds said.
    carrier_lost: Option<Instant>,
    /// The failing layer changed while a step ran: attempt 1 follows its end.
    restart: bool,
    /// Failed rounds in a row of the outage's current layer.
    layer_fails: u32,
    /// The attempt whose step runs, and when the last step ended.
    running: u32,
    heal_ended_at: Option<Instant>,
}

impl Decider {
    /// `seed` feeds the backoff jitter; any value works, 0 included.
    pub fn new(policy: Policy, now: Instant, seed: u64) -> Self {
        assert!(policy.steps >= 1 && policy.fail_after >= 1 && policy.up_after >= 1);
        Decider {
            interval_ns: mono::nanos(policy.interval),
            timeout_ns: mono::nanos(policy.timeout),
            policy,
            impossible: None,
            last_round: None,
            state: State::Starting,
            since: now,
            fails: 0,
            goods: 0,
            streak_start: None,
            outage_reason: String::new(),
            outage_start: None,
            attempts: 0,
            heals: 0,
            round_start: None,
            next_round: Some(now),
            next_heal: None,
            rng: jitter_state(seed),
            actions: VecDeque::new(),
            start_queued: false,
            held: false,
            heal_pending: false,
            last_layer: Layer::Ok,
            outage_layer: None,
            started: 0,
            healable: true,
            carrier_lost: None,
            restart: false,
            layer_fails: 0,
            running: 0,
            heal_ended_at: None,
        }
    }

    /// The last round's layer: `ok` for a good one (or an ignored layer's name).
    pub fn layer(&self) -> Layer {
        self.last_layer
    }

    /// The layer the current outage is for, while there is one.
    pub fn outage_layer(&self) -> Option<Layer> {
        self.outage_layer
            .filter(|_| !matches!(self.state, State::Up | State::Starting | State::Suspect))
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// When the current state was entered.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// Heal attempts since start.
    pub fn heals(&self) -> u64 {
        self.heals
    }

    /// Holds heals back, or lets them go: an attempt that came due meanwhile starts at once
    /// if the outage is still on.
    pub fn set_held(&mut self, now: Instant, held: bool) {
        self.held = held;
        if !held && self.heal_pending && self.state == State::Down {
            self.start_heal(now);
        }
    }

    /// "ipv4 " (the family and a space), or nothing.
    fn fam(&self) -> String {
        if self.policy.family.is_empty() {
            String::new()
        } else {
            format!("{} ", self.policy.family)
        }
    }

    /// Whether an attempt is due but held back.
    pub fn heal_held(&self) -> bool {
        self.heal_pending
    }

    /// Whether `poll_action` has one.
    #[inline]
    pub fn has_actions(&self) -> bool {
        self.start_queued || !self.actions.is_empty()
    }

    /// The next action, in the order they were asked for.
    #[inline]
    pub fn poll_action(&mut self) -> Option<Action> {
        if let Some(a) = self.actions.pop_front() {
            return Some(a);
        }
        // not `then_some`: its value is built, and dropped by a call, also when not taken
        if std::mem::take(&mut self.start_queued) {
            Some(Action::StartRound)
        } else {
            None
        }
    }

    /// Queues `a` after every action asked for before it (a `StartRound` kept aside
    /// included).
    fn push(&mut self, a: Action) {
        if std::mem::take(&mut self.start_queued) {
            self.actions.push_back(Action::StartRound);
        }
        if matches!(a, Action::StartRound) {
            self.start_queued = true;
        } else {
            self.actions.push_back(a);
        }
    }

    /// The next instant at which `handle_timeout` has work, if any.
    #[inline]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != State::Down || !self.healable {
            return self.next_round; // no attempt can come due: the usual answer, at once
        }
        match (self.next_round, self.next_heal) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_round.is_some_and(|t| t <= now) {
            self.next_round = None;
            self.round_start = Some(now);
            self.last_round = Some(now);
            // `push(StartRound)` without the call: most rounds it is the only action.
            if self.start_queued {
                self.actions.push_back(Action::StartRound);
            }
            self.start_queued = true;
        }
        if self.state == State::Down && self.healable && self.next_heal.is_some_and(|t| t <= now) {
            self.start_heal(now);
        }
    }

    pub fn round_ended(&mut self, now: Instant, v: Verdict) {
        self.judged(now, Round::plain(v));
    }

    /// What the policy makes of a round: None for a good one (quorum met, or a failure of an
    /// ignored layer), else the failing layer's action (`report` when its evidence is not
    /// armed).
    fn act_of(&self, r: &Round) -> Option<Act> {
        if r.verdict.good {
            return None;
        }
        match r.layer.map_or(Act::Heal, |l| self.policy.layers.act(l)) {
            Act::Ignore => None,
            Act::Heal if r.unarmed => Some(Act::Report),
            a => Some(a),
        }
    }

    /// The one round-end path: a verdict with its diagnosis.
    pub fn judged(&mut self, now: Instant, r: Round) {
        let v = r.verdict;
        let started = self.round_start.take().unwrap_or(now);
        let act = self.act_of(&r);
        match r.layer {
            Some(Layer::NoCarrier) if !v.good => {
                self.carrier_lost.get_or_insert(started);
            }
            Some(l) if l > Layer::NoCarrier => self.carrier_lost = None,
            _ => {}
        }
        self.last_layer = if v.good {
            Layer::Ok
        } else {
            r.layer.unwrap_or(Layer::Ok)
        };
        let good = act.is_none();
        if let Some(a) = act {
            let in_outage = matches!(self.state, State::Down | State::Healing | State::Recovering);
            match (in_outage, self.outage_layer, r.layer) {
                (true, Some(old), Some(new)) if old != new && self.started & bit(new) == 0 => {
                    self.start_over(now, old, new, &r)
                }
                (true, Some(old), Some(new)) if old != new => self.back_to(old, new),
                _ => self.layer_fails = self.layer_fails.saturating_add(1),
            }
            // A new layer heals once it has failed fail-after rounds in a row itself, like
            // a new outage (the first round after the carrier returns may well fail).
            self.healable = matches!(a, Act::Heal | Act::LinkUp)
                && (!in_outage || self.layer_fails >= self.policy.fail_after);
        }
        if good {
            self.goods = self.goods.saturating_add(1);
            self.fails = 0;
            self.streak_start = None;
        } else {
            self.fails = self.fails.saturating_add(1);
            self.goods = 0;
            self.streak_start.get_or_insert(started);
        }
        match (self.state, good) {
            (State::Starting, true) => {
                let reason = format!("{}first round good ({})", self.fam(), good_why(&r));
                self.enter(now, State::Up, reason)
            }
            (State::Suspect, true) => {
                let reason = format!("{}round good again ({})", self.fam(), good_why(&r));
                self.enter(now, State::Up, reason)
            }
            (State::Up, true) | (State::Healing, _) => {}
            (State::Starting | State::Up | State::Suspect, false) => {
                if self.fails >= self.policy.fail_after {
                    self.begin_outage(now, &r);
                } else if self.state != State::Suspect {
                    let reason = format!("round failed ({})", self.why(now, &r));
                    self.enter(now, State::Suspect, reason);
                }
            }
            (State::Down | State::Recovering, true) => {
                if self.goods >= self.policy.up_after {
                    self.recovered(now);
                } else if self.state == State::Down {
                    let reason = format!(
                        "{}good round {} of {}",
                        self.fam(),
                        self.goods,
                        self.policy.up_after
                    );
                    self.enter(now, State::Recovering, reason);
                }
            }
            (State::Down | State::Recovering, false) => {
                if self.state == State::Recovering {
                    let reason = format!("round failed ({})", self.why(now, &r));
                    self.enter(now, State::Down, reason);
                }
                let due = self.next_heal.is_some_and(|t| t <= now);
                if self.healable && (due || self.heal_pending && !self.held) {
                    self.start_heal(now);
                }
            }
        }
        self.schedule_round(now, started);
    }

    /// The one entry for inputs: everything that happened goes in here as an `Input`.
    pub fn handle_event(&mut self, now: Instant, input: Input) {
        match input {
            Input::RoundEnded(v) => self.round_ended(now, v),
            Input::RoundJudged(r) => self.judged(now, r),
            Input::RoundImpossible { reason } => {
                self.impossible = Some(reason);
                let v = Verdict {
                    good: false,
                    answered: 0,
                    targets: 0,
                };
                // The interface is missing: the `absent` layer.
                let r = Round {
                    layer: Some(Layer::Absent),
                    ..Round::plain(v)
                };
                self.judged(now, r);
                self.impossible = None;
            }
            Input::RoundSkipped => self.round_skipped(now),
            Input::HealEnded => self.heal_ended(now),
            Input::KernelChanged => self.confirm(now),
            Input::CarrierLost => {
                self.carrier_lost.get_or_insert(now);
                self.kernel_says(now, Layer::NoCarrier, "carrier lost");
            }
            Input::CarrierRegained => self.carrier_lost = None,
            Input::AdminDown => {
                // At once, without waiting for fail-after: the kernel said what is wrong and
                // what fixes it. Not while heals are held back (inhibit, boot grace, another
                // lane's step): then the rounds judge it like any failure.
                if self.policy.layers.act(Layer::AdminDown) == Act::LinkUp && !self.held {
                    self.heals = self.heals.saturating_add(1);
                    self.push(Action::LinkUp { attempt: 0 });
                }
                // after the link-up: the fix first, then the news
                self.kernel_says(now, Layer::AdminDown, "link set down");
            }
        }
    }

    /// The kernel reported a fault of `layer` while up: suspect at once (the kernel is
    /// certain and quick; the confirming round it triggers takes a timeout), the rounds decide
    /// the rest as usual. Nothing is counted: a good confirming round is up again.
    fn kernel_says(&mut self, now: Instant, layer: Layer, what: &str) {
        if self.state == State::Up && self.policy.layers.act(layer).is_outage() {
            let reason = format!(
                "{}{layer}: the kernel reports {what}; confirming",
                self.fam()
            );
            self.enter(now, State::Suspect, reason);
        }
    }

    /// What a failed round's reason says: the family, the failing layer, and the verdict (or
    /// why the round could not run): `ipv4 upstream: 0/2 targets answered, gateway
    /// 198.51.100.1 alive`, `ipv4 no-carrier for 30s`.
    fn why(&self, now: Instant, r: &Round) -> String {
        let detail = self
            .impossible
            .clone()
            .unwrap_or_else(|| r.verdict.to_string());
        let fam = self.fam();
        let gw = |what: &str| {
            r.gateway
                .map_or(String::new(), |g| format!(", gateway {g} {what}"))
        };
        match r.layer {
            None => format!("{fam}{detail}"),
            Some(Layer::NoCarrier) => {
                let since = self.carrier_lost.unwrap_or(now);
                format!(
                    "{fam}no-carrier for {}",
                    human(now.saturating_duration_since(since))
                )
            }
            Some(l @ Layer::Upstream) => format!("{fam}{l}: {detail}{}", gw("alive")),
            Some(l @ Layer::GatewayDead) => format!("{fam}{l}: {detail}{}", gw("dead")),
            Some(l @ Layer::GatewaySilent) => format!(
                "{fam}{l}: {detail}{}",
                gw("silent to echo, alive at layer 2")
            ),
            Some(l) => format!("{fam}{l}: {detail}"),
        }
    }

    /// The failing layer changed during an outage: the ladder starts over for the new one
    /// (attempt 1, the backoff from its minimum) once it has failed fail-after rounds in a
    /// row, and no sooner than the minimum backoff after the last step ended (so a flapping
    /// diagnosis cannot run steps back to back).
    fn start_over(&mut self, now: Instant, old: Layer, new: Layer, r: &Round) {
        let fam = self.fam();
        self.push(Action::Announce(format!(
            "{fam}failing layer now {new} (was {old}): ladder starts over"
        )));
        self.outage_layer = Some(new);
        self.started |= bit(new);
        self.outage_reason = format!("failing layer now {}", self.why(now, r));
        self.attempts = 0;
        self.layer_fails = 1;
        if self.state == State::Healing {
            self.restart = true;
        } else {
            self.next_heal = Some(self.restart_at(now));
        }
    }

    /// The failing layer changed to one whose ladder already started in this outage: the
    /// ladder goes on where it is (a diagnosis flapping between two layers must not hold the
    /// outage at attempt 1 for ever: the last rung, a reboot, would never come).
    fn back_to(&mut self, old: Layer, new: Layer) {
        let fam = self.fam();
        self.push(Action::Announce(format!(
            "{fam}failing layer now {new} (was {old}) again: the ladder goes on"
        )));
        self.outage_layer = Some(new);
    }

    fn restart_at(&self, now: Instant) -> Instant {
        self.heal_ended_at
            .map_or(now, |t| later(t, self.policy.backoff_min))
            .max(now)
    }

    /// The kernel reported a change that can break reachability: start the next round now
    /// rather than an interval from the last one, unless one is running. Rounds still start at
    /// most one timeout apart, so a storm of changes cannot turn into a storm of rounds.
    fn confirm(&mut self, now: Instant) {
        if self.round_start.is_some() {
            return;
        }
        let earliest = self
            .last_round
            .map_or(now, |t| later(t, self.policy.timeout).max(now));
        if self.next_round.is_some_and(|t| t > earliest) {
            self.next_round = Some(earliest);
        }
    }

    /// The lane has nothing to probe (the `gateway` target resolved to the other family): no
    /// round until `wake`. A timer that only found it idle again every interval cost a third
    /// of a healthy round's instructions (issue 9).
    pub fn park(&mut self) {
        self.round_start = None;
        self.next_round = None;
    }

    /// Whether the lane is parked: no round running and none scheduled.
    pub fn parked(&self) -> bool {
        self.round_start.is_none() && self.next_round.is_none()
    }

    /// What a parked lane's targets follow from changed (the kernel's routes): its round
    /// starts now. A lane that is not parked keeps its schedule.
    pub fn wake(&mut self, now: Instant) {
        if self.parked() {
            self.next_round = Some(now);
        }
    }

    /// A round could not run (the interface is missing): no verdict, try again an interval on.
    pub fn round_skipped(&mut self, now: Instant) {
        let started = self.round_start.take().unwrap_or(now);
        self.next_round = Some(later(started, self.policy.interval).max(now));
    }

    /// The heal step of the current attempt has ended (whatever its exit status: the rounds,
    /// not the step, say whether it worked).
    pub fn heal_ended(&mut self, now: Instant) {
        if self.state != State::Healing {
            return;
        }
        self.heal_ended_at = Some(now);
        let restarted = self.restart;
        let wait = if std::mem::take(&mut self.restart) {
            self.restart_at(now).saturating_duration_since(now)
        } else {
            self.backoff(self.attempts)
        };
        self.next_heal = Some(later(now, wait));
        let (k, fam) = (self.running, self.fam());
        if self.goods >= self.policy.up_after {
            self.recovered(now);
        } else if self.goods > 0 {
            let reason = format!(
                "{fam}heal attempt {k} ended; good round {} of {}",
                self.goods, self.policy.up_after
            );
            self.enter(now, State::Recovering, reason);
        } else {
            let next = if self.healable {
                format!("next attempt in {} unless it recovers", human(wait))
            } else if restarted {
                "the ladder starts over for the new failing layer".to_string()
            } else {
                "no further attempt: the failure is reported only".to_string()
            };
            self.enter(
                now,
                State::Down,
                format!("{fam}heal attempt {k} ended; {next}"),
            );
        }
    }

    fn begin_outage(&mut self, now: Instant, r: &Round) {
        self.outage_reason = format!(
            "{} failed rounds in a row ({})",
            self.fails,
            self.why(now, r)
        );
        self.outage_start = self.streak_start.or(Some(now));
        self.outage_layer = r.layer;
        self.started = r.layer.map_or(0, bit);
        self.layer_fails = self.fails;
        self.attempts = 0;
        self.restart = false;
        self.enter(now, State::Down, self.outage_reason.clone());
        self.next_heal = Some(now);
        self.start_heal(now);
    }

    /// The next attempt of the outage's ladder, if its layer heals (or when `carrier-wait`
    /// will have passed, for no-carrier); held back while heals are.
    fn start_heal(&mut self, now: Instant) {
        if !self.healable {
            // `report`, or evidence not armed: the outage stands, no step (next_heal waits
            // for a round that may heal).
            return;
        }
        if self.outage_layer == Some(Layer::NoCarrier) {
            let since = self.carrier_lost.or(self.outage_start).unwrap_or(now);
            let until = later(since, self.policy.carrier_wait);
            if until > now {
                self.next_heal = Some(until);
                return;
            }
        }
        self.next_heal = None;
        if self.held {
            self.heal_pending = true;
            return;
        }
        self.heal_pending = false;
        self.attempts = self.attempts.saturating_add(1);
        self.heals = self.heals.saturating_add(1);
        let attempt = self.attempts;
        self.running = attempt;
        let step = (attempt as usize).min(self.policy.steps) - 1;
        let on = match self.outage_layer {
            Some(l) => format!(" for {}{l}", self.fam()),
            None => String::new(),
        };
        self.enter(now, State::Healing, format!("heal attempt {attempt}{on}"));
        let link_up = self.outage_layer == Some(Layer::AdminDown)
            && self.policy.layers.act(Layer::AdminDown) == Act::LinkUp;
        self.push(if link_up {
            Action::LinkUp { attempt }
        } else {
            Action::RunHeal {
                attempt,
                step,
                reason: self.outage_reason.clone(),
            }
        });
    }

    fn recovered(&mut self, now: Instant) {
        let lasted = self
            .outage_start
            .map(|t| now.saturating_duration_since(t))
            .unwrap_or_default();
        let n = self.attempts;
        let reason = format!(
            "{}outage over after {}, {n} heal attempt{}",
            self.fam(),
            human(lasted),
            if n == 1 { "" } else { "s" }
        );
        self.enter(now, State::Up, reason);
        self.attempts = 0;
        self.next_heal = None;
        self.heal_pending = false;
        self.outage_start = None;
        self.outage_layer = None;
        self.started = 0;
        self.healable = true;
        self.restart = false;
    }

    fn enter(&mut self, now: Instant, to: State, reason: String) {
        let from = self.state;
        self.state = to;
        self.since = now;
        let attempt = self.attempts;
        self.push(Action::Transition {
            from,
            to,
            reason,
            attempt,
        });
    }

    fn schedule_round(&mut self, now: Instant, started: Instant) {
        // While up, rounds start an interval apart. From the first failure until the outage
        // ends they start a timeout apart: a failing round lasts that long, so failing rounds
        // follow each other at once, and good rounds during recovery (which end after one
        // round-trip) do not turn into a flood.
        let spacing = if matches!(self.state, State::Up | State::Starting) {
            self.interval_ns
        } else {
            self.timeout_ns
        };
        // `later(started, spacing)`, from the nanoseconds
        let next = spacing.and_then(|ns| started.checked_add_nanos(ns));
        self.next_round = Some(next.unwrap_or(started).max(now));
    }

    /// min(MIN * 2^(k-1), MAX), then +/-10% jitter so a fleet that lost the same uplink does
    /// not retry in lockstep.
    fn backoff(&mut self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        let base = self
            .policy
            .backoff_min
            .saturating_mul(1 << doublings)
            .min(self.policy.backoff_max);
        let permille = 900 + (self.next_random() % 201) as u32; // 900..=1100
        base * permille / 1000
    }

    /// xorshift64*: enough for jitter, deterministic for the tests.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// What makes a good round good: its verdict, or the ignored layer it failed at
/// (`gateway-silent ignored: 0/1 targets answered`).
fn good_why(r: &Round) -> String {
    match r.layer {
        Some(l) if !r.verdict.good => format!("{l} ignored: {}", r.verdict),
        _ => r.verdict.to_string(),
    }
}

/// xorshift's state must never be 0 (it would stay 0, and every backoff would get the same
/// -10 %): the seed is mixed with a constant, and the one seed that mixes to 0 is moved.
/// `layer`'s bit in `Decider::started`.
fn bit(layer: Layer) -> u16 {
    1 << layer as u16
}

fn jitter_state(seed: u64) -> u64 {
    match seed ^ 0x9e37_79b9_7f4a_7c15 {
        0 => 0x9e37_79b9_7f4a_7c15,
        x => x,
    }
}

fn later(t: Instant, d: Duration) -> Instant {
    // An Instant near the end of its range cannot happen in practice; saturate rather than panic.
    t.checked_add(d).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: f64) -> Duration {
        Duration::from_secs_f64(x)
    }

    fn policy() -> Policy {
        Policy {
            interval: s(10.0),
            timeout: s(2.0),
            fail_after: 3,
            up_after: 1,
            steps: 1,
            backoff_min: s(30.0),
            backoff_max: s(900.0),
            layers: crate::diagnose::Policy::default(),
            carrier_wait: s(30.0),
            family: "",
        }
    }

    /// The diagnosis of a failed round at t: (layer, unarmed).
    type Judge = Box<dyn Fn(f64) -> (Layer, bool)>;

    /// A virtual lab: rounds take 1 ms when the link is good and the whole timeout when it is
    /// not; heal steps take `heal_len`; attempt `fix_on` (if any) repairs the link for good.
    struct Sim {
        wd: Decider,
        t0: Instant,
        now: Instant,
        timeout: Duration,
        heal_len: Duration,
        bad: Box<dyn Fn(f64) -> bool>,
        /// The diagnosis of a failed round at t: (layer, unarmed); None: undiagnosed.
        judge: Option<Judge>,
        fix_on: Option<u32>,
        fixed: bool,
        round_end: Option<(Instant, bool, f64)>,
        heal_end: Option<(Instant, u32)>,
        /// (seconds since t0, action), everything the machine asked for.
        log: Vec<(f64, Action)>,
    }

    impl Sim {
        fn new(policy: Policy, bad: impl Fn(f64) -> bool + 'static) -> Sim {
            let t0 = Instant::now();
            Sim {
                wd: Decider::new(policy, t0, 42),
                t0,
                now: t0,
                timeout: s(2.0),
                heal_len: s(1.0),
                bad: Box::new(bad),
                judge: None,
                fix_on: None,
                fixed: false,
                round_end: None,
                heal_end: None,
                log: Vec::new(),
            }
        }

        fn at(&self) -> f64 {
            (self.now - self.t0).as_secs_f64()
        }

        fn run(&mut self, until_secs: f64) {
            let until = self.t0 + s(until_secs);
            for _ in 0..1_000_000 {
                let next = [
                    self.wd.poll_timeout(),
                    self.round_end.map(|r| r.0),
                    self.heal_end.map(|h| h.0),
                ]
                .into_iter()
                .flatten()
                .min()
                .expect("the machine always has something scheduled");
                if next > until {
                    self.now = until;
                    return;
                }
                assert!(next >= self.now, "time went backwards");
                self.now = next;
                if let Some((t, good, at)) = self.round_end.filter(|r| r.0 <= self.now) {
                    self.round_end = None;
                    let v = Verdict {
                        good,
                        answered: usize::from(good),
                        targets: 1,
                    };
                    match &self.judge {
                        Some(j) if !good => {
                            let (layer, unarmed) = j(at);
                            let r = Round {
                                layer: Some(layer),
                                unarmed,
                                gateway: Some("198.51.100.1".parse().unwrap()),
                                ..Round::plain(v)
                            };
                            self.wd.judged(t, r);
                        }
                        Some(_) => self.wd.judged(
                            t,
                            Round {
                                layer: Some(Layer::Ok),
                                ..Round::plain(v)
                            },
                        ),
                        None => self.wd.round_ended(t, v),
                    }
                }
                if self.heal_end.is_some_and(|h| h.0 <= self.now) {
                    self.heal_end = None;
                    self.wd.heal_ended(self.now);
                }
                self.wd.handle_timeout(self.now);
                while let Some(a) = self.wd.poll_action() {
                    match &a {
                        Action::StartRound => {
                            assert!(self.round_end.is_none(), "rounds never overlap");
                            let good = self.fixed || !(self.bad)(self.at());
                            let len = if good { s(0.001) } else { self.timeout };
                            self.round_end = Some((self.now + len, good, self.at()));
                        }
                        Action::RunHeal { attempt, .. } => {
                            assert!(self.heal_end.is_none(), "heal steps never overlap");
                            // The repair takes effect as the step starts (ifup configures the
                            // address first, then runs its hooks).
                            if self.fix_on.is_some_and(|k| *attempt >= k) {
                                self.fixed = true;
                            }
                            self.heal_end = Some((self.now + self.heal_len, *attempt));
                        }
                        Action::LinkUp { attempt } => {
                            if *attempt > 0 {
                                assert!(self.heal_end.is_none(), "heal steps never overlap");
                                self.heal_end = Some((self.now, *attempt));
                            }
                        }
                        Action::Transition { from, to, .. } => assert_ne!(from, to),
                        Action::Announce(_) => {}
                    }
                    self.log.push((self.at(), a));
                }
            }
            panic!("step cap reached: the machine spins");
        }

        fn heals(&self) -> Vec<(f64, u32, usize)> {
            self.log
                .iter()
                .filter_map(|(t, a)| match a {
                    Action::RunHeal { attempt, step, .. } => Some((*t, *attempt, *step)),
                    _ => None,
                })
                .collect()
        }

        fn rounds(&self) -> Vec<f64> {
            self.log
                .iter()
                .filter(|(_, a)| *a == Action::StartRound)
                .map(|(t, _)| *t)
                .collect()
        }

        fn transitions(&self) -> Vec<(State, State)> {
            self.log
                .iter()
                .filter_map(|(_, a)| match a {
                    Action::Transition { from, to, .. } => Some((*from, *to)),
                    _ => None,
                })
                .collect()
        }

        fn heal_ends(&self) -> Vec<f64> {
            self.heals()
                .iter()
                .map(|h| h.0 + self.heal_len.as_secs_f64())
                .collect()
        }
    }

    /// The actions come out in the order they were asked for, a `StartRound` kept out of the
    /// queue (`start_queued`) included: before what follows it, after what came before.
    #[test]
    fn actions_come_out_in_the_order_asked_for() {
        let good = Round::plain(Verdict {
            good: true,
            answered: 1,
            targets: 1,
        });
        let t0 = Instant::now();
        let mut wd = Decider::new(policy(), t0, 1);
        assert!(!wd.has_actions());
        wd.handle_timeout(t0);
        assert!(wd.has_actions());
        // the round's end judged before its StartRound was taken: the transition after it
        wd.judged(t0, good);
        let t1 = t0 + policy().interval;
        wd.handle_timeout(t1);
        let got: Vec<Action> = std::iter::from_fn(|| wd.poll_action()).collect();
        assert!(
            matches!(
                got[..],
                [
                    Action::StartRound,
                    Action::Transition { to: State::Up, .. },
                    Action::StartRound
                ]
            ),
            "{got:?}"
        );
        assert!(!wd.has_actions());
        // two StartRounds in a row, none taken in between
        wd.round_skipped(t1);
        let t2 = t1 + policy().interval;
        wd.handle_timeout(t2);
        wd.round_skipped(t2);
        wd.handle_timeout(t2 + policy().interval);
        let got: Vec<Action> = std::iter::from_fn(|| wd.poll_action()).collect();
        assert_eq!(got, [Action::StartRound, Action::StartRound]);
        assert!(!wd.has_actions() && wd.poll_action().is_none());
    }

    #[test]
    fn a_held_heal_waits_without_using_up_an_attempt_then_starts_at_once() {
        let mut p = policy();
        p.steps = 3;
        let mut sim = Sim::new(p, |t| t >= 30.0);
        sim.wd.set_held(sim.now, true);
        sim.run(200.0);
        assert!(sim.heals().is_empty(), "{:?}", sim.heals());
        assert!(sim.wd.heal_held());
        assert_eq!(sim.wd.state(), State::Down);
        let rounds = sim.rounds().len();
        assert!(rounds > 60, "rounds go on while held: {rounds}");
        sim.wd.set_held(sim.now, false);
        sim.run(203.0);
        let (t, attempt, step) = sim.heals()[0];
        assert_eq!(
            (attempt, step),
            (1, 0),
            "attempt 1, the ladder's first step"
        );
        assert!(t <= 202.0, "at the next turn after the release: {t}");
        assert!(!sim.wd.heal_held());
    }

    #[test]
    fn a_hold_that_ends_while_recovering_heals_when_it_fails_again() {
        // Down while held, a good round (recovering), then failures again after the release.
        let mut p = policy();
        p.up_after = 2;
        let mut sim = Sim::new(p, |t| t >= 30.0 && !(60.0..60.5).contains(&t));
        sim.wd.set_held(sim.now, true);
        sim.run(59.0);
        assert!(sim.wd.heal_held());
        sim.run(60.2);
        sim.wd.set_held(sim.now, false);
        assert!(sim.heals().is_empty());
        sim.run(70.0);
        assert_eq!(sim.heals().len(), 1, "{:?}", sim.transitions());
    }

    #[test]
    fn an_outage_that_ends_while_held_needs_no_heal() {
        let mut sim = Sim::new(policy(), |t| (30.0..80.0).contains(&t));
        sim.wd.set_held(sim.now, true);
        sim.run(100.0);
        assert_eq!(sim.wd.state(), State::Up);
        assert!(!sim.wd.heal_held());
        sim.wd.set_held(sim.now, false);
        sim.run(200.0);
        assert!(sim.heals().is_empty());
    }

    #[test]
    fn healthy_rounds_are_an_interval_apart() {
        let mut sim = Sim::new(policy(), |_| false);
        sim.run(100.0);
        let rounds = sim.rounds();
        assert_eq!(rounds.len(), 11, "{rounds:?}");
        for w in rounds.windows(2) {
            assert!((w[1] - w[0] - 10.0).abs() < 1e-6);
        }
        assert_eq!(sim.transitions(), vec![(State::Starting, State::Up)]);
        assert!(sim.heals().is_empty());
    }

    #[test]
    fn single_loss_does_not_heal() {
        let mut sim = Sim::new(policy(), |t| (20.0..21.0).contains(&t));
        sim.run(600.0);
        assert!(sim.heals().is_empty());
        assert_eq!(
            sim.transitions(),
            vec![
                (State::Starting, State::Up),
                (State::Up, State::Suspect),
                (State::Suspect, State::Up)
            ]
        );
        // The round after the failed one came at once, not an interval later.
        let r = sim.rounds();
        assert_eq!((r[2], r[3]), (20.0, 22.0));
    }

    #[test]
    fn fail_after_consecutive_losses_heals_within_the_bound() {
        let fault = 35.0;
        let mut sim = Sim::new(policy(), move |t| t >= fault);
        sim.run(60.0);
        let heals = sim.heals();
        assert_eq!(heals.len(), 1);
        // Detection bound: INTERVAL + N x TIMEOUT after the fault began.
        let bound = fault + 10.0 + 3.0 * 2.0;
        assert!(
            heals[0].0 <= bound,
            "heal at {} > bound {bound}",
            heals[0].0
        );
        assert_eq!(heals[0].0, 46.0); // rounds 40-42, 42-44, 44-46 failed
        assert_eq!(
            sim.transitions()[..4],
            [
                (State::Starting, State::Up),
                (State::Up, State::Suspect),
                (State::Suspect, State::Down),
                (State::Down, State::Healing)
            ]
        );
    }

    #[test]
    fn two_losses_then_good_is_no_outage() {
        let mut sim = Sim::new(policy(), |t| (10.0..13.0).contains(&t));
        sim.run(300.0);
        assert!(sim.heals().is_empty());
    }

    #[test]
    fn failing_heal_backs_off_doubling_to_the_cap() {
        let mut p = policy();
        p.backoff_max = s(240.0);
        let mut sim = Sim::new(p, |t| t >= 5.0);
        sim.run(3600.0);
        let heals = sim.heals();
        let ends = sim.heal_ends();
        let gaps: Vec<f64> = heals
            .iter()
            .skip(1)
            .zip(&ends)
            .map(|(h, end)| h.0 - end)
            .collect();
        let want = [30.0, 60.0, 120.0, 240.0, 240.0, 240.0];
        assert!(gaps.len() >= want.len(), "{gaps:?}");
        for (g, w) in gaps.iter().zip(want) {
            assert!(
                *g >= w * 0.9 - 1e-6 && *g <= w * 1.1 + 1e-6,
                "gap {g} vs {w}: {gaps:?}"
            );
        }
        for g in &gaps[want.len()..] {
            assert!(*g <= 240.0 * 1.1 + 1e-6, "capped: {gaps:?}");
        }
        // The jitter really varies.
        assert!(
            gaps[3..].windows(2).any(|w| (w[0] - w[1]).abs() > 1e-3),
            "{gaps:?}"
        );
        // Probing went on meanwhile: about one failing round per timeout.
        let rounds = sim.rounds().len() as f64;
        assert!(
            rounds > 3600.0 / 2.0 * 0.9 && rounds < 3600.0 / 2.0 + 10.0,
            "{rounds}"
        );
    }

    #[test]
    fn transitions_carry_the_attempt_count_as_of_the_change() {
        let mut sim = Sim::new(policy(), |t| (5.0..100.0).contains(&t));
        sim.run(300.0);
        let seen: Vec<(State, u32)> = sim
            .log
            .iter()
            .filter_map(|(_, a)| match a {
                Action::Transition { to, attempt, .. } => Some((*to, *attempt)),
                _ => None,
            })
            .collect();
        assert_eq!(
            seen[..4],
            [
                (State::Up, 0),
                (State::Suspect, 0),
                (State::Down, 0),
                (State::Healing, 1)
            ]
        );
        assert_eq!(
            seen.last(),
            Some(&(State::Up, 2)),
            "the outage took two attempts (at ~11 s and ~42 s): {seen:?}"
        );
    }

    #[test]
    fn ladder_runs_in_order_then_stays_on_the_last_step() {
        let mut p = policy();
        p.steps = 3;
        p.backoff_min = s(1.0);
        p.backoff_max = s(4.0);
        let mut sim = Sim::new(p, |t| t >= 1.0);
        sim.run(120.0);
        let steps: Vec<(u32, usize)> = sim.heals().iter().map(|h| (h.1, h.2)).take(6).collect();
        assert_eq!(steps, vec![(1, 0), (2, 1), (3, 2), (4, 2), (5, 2), (6, 2)]);
    }

    #[test]
    fn recovery_resets_the_ladder_and_the_backoff() {
        let mut p = policy();
        p.steps = 2;
        let mut sim = Sim::new(p, |t| (50.0..60.0).contains(&t) || t >= 1000.0);
        sim.fix_on = Some(2);
        // First outage: the link comes back by itself at 60 s, after attempt 1.
        sim.run(200.0);
        assert_eq!(sim.heals().iter().map(|h| h.1).collect::<Vec<_>>(), vec![1]);
        assert_eq!(sim.wd.state(), State::Up);
        let up = sim.log.iter().find_map(|(_, a)| match a {
            Action::Transition {
                to: State::Up,
                from: State::Down,
                reason,
                attempt: 1,
            } => Some(reason.clone()),
            _ => None,
        });
        assert!(
            up.unwrap().starts_with("outage over after"),
            "recovered with a reason"
        );
        // Second outage: attempt numbering and ladder start again at 1 / step 0; attempt 2
        // (step 1) fixes it after ~30 s of backoff, not 60.
        sim.run(1200.0);
        let second: Vec<_> = sim.heals().into_iter().filter(|h| h.0 >= 1000.0).collect();
        assert_eq!(
            second.iter().map(|h| (h.1, h.2)).collect::<Vec<_>>(),
            vec![(1, 0), (2, 1)]
        );
        let gap = second[1].0 - (second[0].0 + 1.0);
        assert!((27.0..=33.0).contains(&gap), "{gap}");
        assert_eq!(sim.wd.state(), State::Up);
    }

    #[test]
    fn up_after_needs_that_many_good_rounds_in_a_row() {
        let mut p = policy();
        p.up_after = 3;
        // Down from 10 s; from 40 s the link flaps (good, bad, good...) by 2 s slots; from
        // 100 s it is steady.
        let mut sim = Sim::new(p, |t| {
            (10.0..40.0).contains(&t) || ((40.0..100.0).contains(&t) && (t as u64 / 2) % 2 == 0)
        });
        sim.run(99.0);
        assert_ne!(sim.wd.state(), State::Up, "{:?}", sim.transitions());
        assert!(sim
            .transitions()
            .contains(&(State::Down, State::Recovering)));
        assert!(sim
            .transitions()
            .contains(&(State::Recovering, State::Down)));
        sim.run(130.0);
        assert_eq!(sim.wd.state(), State::Up);
    }

    #[test]
    fn good_rounds_during_an_outage_start_a_timeout_apart() {
        let mut p = policy();
        p.up_after = 5;
        let mut sim = Sim::new(p, |t| (10.0..20.0).contains(&t));
        sim.run(60.0);
        let r = sim.rounds();
        let during: Vec<f64> = r
            .iter()
            .copied()
            .filter(|t| (20.0..30.0).contains(t))
            .collect();
        assert!(
            during.windows(2).all(|w| (w[1] - w[0] - 2.0).abs() < 1e-6),
            "{r:?}"
        );
        assert!(sim.transitions().contains(&(State::Recovering, State::Up)));
    }

    #[test]
    fn a_step_that_fixes_the_link_ends_the_outage_when_it_ends() {
        let mut sim = Sim::new(policy(), |t| t >= 5.0);
        sim.fix_on = Some(1);
        sim.heal_len = s(5.0);
        sim.run(100.0);
        assert_eq!(sim.heals().len(), 1);
        let t = sim.transitions();
        assert_eq!(t.last(), Some(&(State::Healing, State::Up)), "{t:?}");
    }

    #[test]
    fn fail_after_one_heals_on_the_first_failed_round() {
        let mut p = policy();
        p.fail_after = 1;
        let mut sim = Sim::new(p, |t| t >= 15.0);
        sim.run(30.0);
        assert_eq!(sim.heals()[0].0, 22.0);
        assert!(!sim.transitions().contains(&(State::Up, State::Suspect)));
    }

    #[test]
    fn starting_with_a_dead_link_heals_without_ever_being_up() {
        let mut sim = Sim::new(policy(), |_| true);
        sim.run(10.0);
        assert_eq!(sim.heals()[0].0, 6.0);
        assert_eq!(sim.transitions()[0], (State::Starting, State::Suspect));
    }

    #[test]
    fn skipped_rounds_wait_an_interval_and_decide_nothing() {
        let t0 = Instant::now();
        let mut wd = Decider::new(policy(), t0, 1);
        wd.handle_timeout(t0);
        assert_eq!(wd.poll_action(), Some(Action::StartRound));
        wd.round_skipped(t0);
        assert_eq!(wd.poll_action(), None);
        assert_eq!(wd.poll_timeout(), Some(t0 + s(10.0)));
        assert_eq!(wd.state(), State::Starting);
    }

    #[test]
    fn no_seed_leaves_the_jitter_stuck() {
        // The seed that used to give xorshift the state 0, where it stays forever.
        let t0 = Instant::now();
        for seed in [0x9e37_79b9_7f4a_7c15, 0, u64::MAX] {
            let mut wd = Decider::new(policy(), t0, seed);
            assert_ne!(wd.rng, 0, "seed {seed:#x}");
            let draws: Vec<u64> = (0..4).map(|_| wd.next_random()).collect();
            assert!(
                draws.windows(2).all(|w| w[0] != w[1]),
                "seed {seed:#x}: {draws:?}"
            );
        }
    }

    #[test]
    fn counters_saturate() {
        let t0 = Instant::now();
        let mut wd = Decider::new(policy(), t0, 1);
        wd.fails = u32::MAX;
        wd.heals = u64::MAX;
        let bad = Verdict {
            good: false,
            answered: 0,
            targets: 1,
        };
        wd.round_ended(t0, bad);
        assert_eq!(wd.fails, u32::MAX);
        wd.attempts = u32::MAX;
        wd.start_heal(t0);
        assert_eq!((wd.attempts, wd.heals), (u32::MAX, u64::MAX));
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let t0 = Instant::now();
        for seed in 0..200 {
            let mut wd = Decider::new(policy(), t0, seed);
            for attempt in 1..8 {
                let base = (30.0 * f64::from(1u32 << (attempt - 1))).min(900.0);
                let b = wd.backoff(attempt).as_secs_f64();
                assert!(
                    b >= base * 0.9 - 1e-9 && b <= base * 1.1 + 1e-9,
                    "{attempt}: {b}"
                );
            }
        }
        let mut wd = Decider::new(policy(), t0, 7);
        assert!(
            wd.backoff(u32::MAX) <= s(990.0),
            "huge attempt numbers saturate"
        );
    }

    fn transitions(wd: &mut Decider) -> Vec<(State, String)> {
        std::iter::from_fn(|| wd.poll_action())
            .filter_map(|a| match a {
                Action::Transition { to, reason, .. } => Some((to, reason)),
                _ => None,
            })
            .collect()
    }

    /// A missing interface is a failed round with its own reason, counted toward fail-after,
    /// so the heal ladder runs (the old `round_skipped` waited forever, still `up`).
    #[test]
    fn impossible_rounds_count_as_failed_with_their_reason() {
        let t0 = Instant::now();
        let mut wd = Decider::new(policy(), t0, 1);
        let good = Verdict {
            good: true,
            answered: 1,
            targets: 1,
        };
        wd.handle_timeout(t0);
        wd.handle_event(t0, Input::RoundEnded(good));
        assert_eq!(wd.state(), State::Up);
        let mut now = t0;
        let gone = || Input::RoundImpossible {
            reason: "interface nh0 is gone".into(),
        };
        for _ in 0..3 {
            now = wd.poll_timeout().unwrap();
            wd.handle_timeout(now);
            wd.handle_event(now, gone());
        }
        let t = transitions(&mut wd);
        assert_eq!(
            t[1],
            (
                State::Suspect,
                "round failed (absent: interface nh0 is gone)".into()
            )
        );
        assert_eq!(
            t[2],
            (
                State::Down,
                "3 failed rounds in a row (absent: interface nh0 is gone)".into()
            )
        );
        assert_eq!(wd.state(), State::Healing);
        assert!(
            now < t0 + s(10.0 + 2.0 * 2.0 + 0.1),
            "one interval, then a timeout apart"
        );
        let next = wd.poll_timeout().unwrap();
        wd.handle_timeout(next);
        wd.handle_event(next, Input::RoundEnded(good));
        assert!(
            !transitions(&mut wd)
                .iter()
                .any(|(_, r)| r.contains("is gone")),
            "the reason does not stick"
        );
    }

    /// A kernel change starts the next round at once, but never sooner than a timeout after
    /// the last one started, and not while one runs.
    #[test]
    fn kernel_changes_pull_the_next_round_in() {
        let t0 = Instant::now();
        let mut wd = Decider::new(policy(), t0, 1);
        let good = Verdict {
            good: true,
            answered: 1,
            targets: 1,
        };
        wd.handle_timeout(t0);
        wd.handle_event(t0 + s(0.5), Input::KernelChanged); // a round runs: nothing
        wd.handle_event(t0 + s(0.5), Input::RoundEnded(good));
        assert_eq!(wd.poll_timeout(), Some(t0 + s(10.0)));
        wd.handle_event(t0 + s(1.0), Input::KernelChanged);
        assert_eq!(
            wd.poll_timeout(),
            Some(t0 + s(2.0)),
            "a timeout after the last start"
        );
        wd.handle_timeout(t0 + s(2.0));
        wd.handle_event(t0 + s(2.001), Input::RoundEnded(good));
        wd.handle_event(t0 + s(7.0), Input::KernelChanged);
        assert_eq!(wd.poll_timeout(), Some(t0 + s(7.0)), "at once");
        // A storm of changes: rounds stay a timeout apart.
        let mut starts = vec![];
        let mut now = t0 + s(7.0);
        while now < t0 + s(17.0) {
            if wd.poll_timeout().is_some_and(|t| t <= now) {
                wd.handle_timeout(now);
                starts.push(now);
                wd.handle_event(now + s(0.001), Input::RoundEnded(good));
            }
            wd.handle_event(now, Input::KernelChanged);
            now += s(0.01);
        }
        assert!(
            starts.windows(2).all(|w| w[1] - w[0] >= s(2.0) - s(0.011)),
            "{starts:?}"
        );
        assert!(starts.len() <= 6, "{}", starts.len());
    }

    // ---- The per-layer policy, in virtual time ----

    impl Sim {
        /// A lab whose failed rounds are diagnosed by `judge`.
        fn judged(
            policy: Policy,
            bad: impl Fn(f64) -> bool + 'static,
            judge: impl Fn(f64) -> (Layer, bool) + 'static,
        ) -> Sim {
            let mut sim = Sim::new(policy, bad);
            sim.judge = Some(Box::new(judge));
            sim
        }

        fn link_ups(&self) -> Vec<(f64, u32)> {
            self.log
                .iter()
                .filter_map(|(t, a)| match a {
                    Action::LinkUp { attempt } => Some((*t, *attempt)),
                    _ => None,
                })
                .collect()
        }

        fn announced(&self) -> Vec<String> {
            self.log
                .iter()
                .filter_map(|(_, a)| match a {
                    Action::Announce(s) => Some(s.clone()),
                    _ => None,
                })
                .collect()
        }

        fn reasons(&self) -> Vec<String> {
            self.log
                .iter()
                .filter_map(|(_, a)| match a {
                    Action::Transition { reason, .. } => Some(reason.clone()),
                    _ => None,
                })
                .collect()
        }
    }

    fn family(p: Policy) -> Policy {
        Policy {
            family: "ipv4",
            ..p
        }
    }

    /// Each failing layer, for ten minutes from 5 s, with the default policy: heal, report,
    /// ignore or link-up, as the contract's table says.
    #[test]
    fn each_layer_picks_its_action() {
        for layer in Layer::FAILING {
            let mut sim = Sim::judged(family(policy()), |t| t >= 5.0, move |_| (layer, false));
            sim.run(600.0);
            let (heals, ups) = (sim.heals().len(), sim.link_ups().len());
            match layer {
                Layer::Absent | Layer::NoAddress | Layer::NoRoute | Layer::GatewayDead => {
                    assert!(
                        heals >= 3 && ups == 0,
                        "{layer}: {heals} heals, {ups} link-ups"
                    );
                    assert_eq!(sim.heals()[0].0, 16.0, "{layer}: at once after fail-after");
                }
                Layer::NoCarrier => {
                    assert!(heals >= 3, "{layer}: {heals}");
                    // Carrier gone since the first failed round's start (10 s): 30 s.
                    assert_eq!(sim.heals()[0].0, 40.0, "{layer}: after carrier-wait");
                }
                Layer::AdminDown => {
                    assert_eq!(heals, 0, "{layer}: no ladder step");
                    assert!(ups >= 3, "{layer}: link-up attempts {:?}", sim.link_ups());
                    assert_eq!(sim.link_ups()[0], (16.0, 1));
                }
                Layer::GatewaySilent => {
                    assert_eq!((heals, ups), (0, 0), "{layer}");
                    assert_eq!(sim.wd.state(), State::Up, "{layer}: not an outage");
                    assert_eq!(sim.transitions(), vec![(State::Starting, State::Up)]);
                    assert_eq!(sim.wd.layer(), Layer::GatewaySilent);
                }
                Layer::Upstream => {
                    assert_eq!((heals, ups), (0, 0), "{layer}: report only");
                    assert_eq!(sim.wd.state(), State::Down, "{layer}: but an outage");
                    assert_eq!(sim.wd.outage_layer(), Some(Layer::Upstream));
                }
                Layer::Ok => unreachable!(),
            }
            assert_eq!(sim.wd.layer(), layer);
        }
    }

    /// The reasons name the family and the layer: `ipv4 upstream: 0/1 targets answered,
    /// gateway 198.51.100.1 alive`, `ipv4 no-carrier for 6s`.
    #[test]
    fn reasons_name_the_family_and_the_layer() {
        let mut sim = Sim::judged(family(policy()), |t| t >= 5.0, |_| (Layer::Upstream, false));
        sim.run(60.0);
        let r = sim.reasons();
        assert_eq!(r[0], "ipv4 first round good (1/1 targets answered)");
        assert_eq!(
            r[1],
            "round failed (ipv4 upstream: 0/1 targets answered, gateway 198.51.100.1 alive)"
        );
        assert_eq!(
            r[2],
            "3 failed rounds in a row (ipv4 upstream: 0/1 targets answered, gateway 198.51.100.1 alive)"
        );
        let mut sim = Sim::judged(
            family(policy()),
            |t| t >= 5.0,
            |_| (Layer::NoCarrier, false),
        );
        sim.run(60.0);
        let r = sim.reasons();
        assert_eq!(r[1], "round failed (ipv4 no-carrier for 2s)", "{r:?}");
        assert_eq!(r[2], "3 failed rounds in a row (ipv4 no-carrier for 6s)");
        assert!(
            r.contains(&"heal attempt 1 for ipv4 no-carrier".to_string()),
            "{r:?}"
        );
    }

    /// Carrier back within carrier-wait: the outage is reported (down, hooks) and ends with
    /// no heal. Gone longer: the ladder, counted from the kernel's event.
    #[test]
    fn no_carrier_heals_only_after_carrier_wait() {
        let cut = |t: f64| (5.0..25.0).contains(&t);
        let mut sim = Sim::judged(policy(), cut, |_| (Layer::NoCarrier, false));
        sim.run(300.0);
        assert!(sim.heals().is_empty(), "{:?}", sim.heals());
        assert!(sim.transitions().contains(&(State::Suspect, State::Down)));
        assert_eq!(sim.wd.state(), State::Up);
        // Gone for good; the kernel said so at 5 s: the first attempt 30 s after that.
        let mut sim = Sim::judged(policy(), |t| t >= 5.0, |_| (Layer::NoCarrier, false));
        sim.run(5.0);
        sim.wd.handle_event(sim.now, Input::CarrierLost);
        sim.run(300.0);
        assert_eq!(sim.heals()[0].0, 35.0, "{:?}", sim.heals());
        // Regained meanwhile, lost again: the wait starts over.
        let mut p = policy();
        p.carrier_wait = s(60.0);
        let mut sim = Sim::judged(p, |t| t >= 5.0, |_| (Layer::NoCarrier, false));
        sim.run(5.0);
        sim.wd.handle_event(sim.now, Input::CarrierLost);
        sim.run(20.0);
        sim.wd.handle_event(sim.now, Input::CarrierRegained);
        sim.wd.handle_event(sim.now, Input::CarrierLost);
        sim.run(300.0);
        assert!(sim.heals()[0].0 >= 80.0, "{:?}", sim.heals());
    }

    /// Issue 9/10: the kernel's carrier loss or admin down is a state change at once (up ->
    /// suspect, in the same turn), not a timeout later; a good confirming round is up again,
    /// and no failed round was counted for it.
    #[test]
    fn a_carrier_loss_is_suspect_at_once_and_a_good_round_is_up_again() {
        let t0 = Instant::now();
        let mut wd = Decider::new(family(policy()), t0, 7);
        let sim_round = |wd: &mut Decider, at: Instant, good: bool| {
            while let Some(a) = wd.poll_action() {
                if a == Action::StartRound {
                    break;
                }
            }
            wd.round_ended(
                at,
                Verdict {
                    good,
                    answered: usize::from(good),
                    targets: 1,
                },
            );
        };
        sim_round(&mut wd, t0, true);
        assert_eq!(wd.state(), State::Up);
        while wd.poll_action().is_some() {}
        let at = t0 + Duration::from_secs(3);
        wd.handle_event(at, Input::CarrierLost);
        assert_eq!(wd.state(), State::Suspect);
        assert_eq!(wd.since(), at, "in the same turn");
        let said: Vec<Action> = std::iter::from_fn(|| wd.poll_action()).collect();
        assert!(
            said.iter().any(
                |a| matches!(a, Action::Transition { to: State::Suspect, reason, .. }
                if reason == "ipv4 no-carrier: the kernel reports carrier lost; confirming")
            ),
            "{said:?}"
        );
        wd.handle_event(at, Input::CarrierRegained);
        sim_round(&mut wd, at + Duration::from_millis(300), true);
        assert_eq!(wd.state(), State::Up);
        // admin down likewise, unless its layer is ignored
        wd.handle_event(at + Duration::from_secs(1), Input::AdminDown);
        assert_eq!(wd.state(), State::Suspect);
    }

    /// A new failing layer during an outage: the ladder starts over (attempt 1, the first
    /// step, the backoff from its minimum), and says so.
    #[test]
    fn a_new_failing_layer_starts_the_ladder_over() {
        let mut p = family(policy());
        p.steps = 3;
        let layer = |t: f64| {
            if t < 100.0 {
                (Layer::NoCarrier, false)
            } else {
                (Layer::NoRoute, false)
            }
        };
        let mut sim = Sim::judged(p, |t| t >= 5.0, layer);
        sim.run(99.0);
        let before: Vec<(u32, usize)> = sim.heals().iter().map(|h| (h.1, h.2)).collect();
        assert_eq!(before, vec![(1, 0), (2, 1)], "{:?}", sim.heals());
        sim.run(400.0);
        assert_eq!(
            sim.announced(),
            vec!["ipv4 failing layer now no-route (was no-carrier): ladder starts over"]
        );
        let after: Vec<(f64, u32, usize)> =
            sim.heals().into_iter().filter(|h| h.0 >= 100.0).collect();
        assert_eq!(
            (after[0].1, after[0].2),
            (1, 0),
            "attempt 1, step 0: {after:?}"
        );
        assert_eq!(
            after[0].0, 106.0,
            "after fail-after rounds of it: {after:?}"
        );
        assert_eq!((after[1].1, after[1].2), (2, 1));
        let gap = after[1].0 - (after[0].0 + 1.0);
        assert!(
            (27.0..=33.0).contains(&gap),
            "backoff from its minimum: {gap}"
        );
        assert_eq!(sim.wd.outage_layer(), Some(Layer::NoRoute));
    }

    /// A layer that changes from one that reports only (upstream) to one that heals (the
    /// gateway stops answering ARP): the heal comes at once.
    #[test]
    fn upstream_then_gateway_dead_heals_at_once() {
        let layer = |t: f64| {
            if t < 100.0 {
                (Layer::Upstream, false)
            } else {
                (Layer::GatewayDead, false)
            }
        };
        let mut sim = Sim::judged(policy(), |t| t >= 5.0, layer);
        sim.run(300.0);
        let heals = sim.heals();
        assert_eq!(
            heals[0].0, 106.0,
            "after fail-after rounds of it: {heals:?}"
        );
        assert_eq!(heals[0].1, 1);
    }

    /// An upstream-only outage of an hour: zero heals, one outage, and it ends when the far
    /// side comes back.
    #[test]
    fn upstream_means_zero_heals_and_recovery_when_it_returns() {
        let far = |t: f64| (5.0..3600.0).contains(&t);
        let mut sim = Sim::judged(policy(), far, |_| (Layer::Upstream, false));
        sim.run(7200.0);
        assert!(sim.heals().is_empty());
        assert_eq!(
            sim.transitions(),
            vec![
                (State::Starting, State::Up),
                (State::Up, State::Suspect),
                (State::Suspect, State::Down),
                (State::Down, State::Up)
            ]
        );
        assert_eq!(sim.wd.heals(), 0);
    }

    /// A failure that rests on targets that never answered is reported, not healed; once the
    /// evidence is armed (a target answered, or arm-after passed), the ladder runs.
    #[test]
    fn an_unarmed_failure_is_reported_not_healed_until_armed() {
        let judge = |t: f64| (Layer::GatewayDead, t < 200.0);
        let mut sim = Sim::judged(policy(), |t| t >= 5.0, judge);
        sim.run(199.0);
        assert!(sim.heals().is_empty(), "{:?}", sim.heals());
        assert_eq!(sim.wd.state(), State::Down);
        sim.run(300.0);
        let heals = sim.heals();
        assert!(!heals.is_empty() && heals[0].0 <= 202.0, "{heals:?}");
        assert_eq!(heals[0].1, 1, "its first attempt");
    }

    /// `on-admin-down = link-up`: the kernel's event sets the link up at once, without waiting
    /// for a round; not while heals are held, and not with another setting.
    #[test]
    fn admin_down_sets_the_link_up_at_once() {
        let t0 = Instant::now();
        let mut wd = Decider::new(policy(), t0, 1);
        wd.handle_timeout(t0);
        wd.round_ended(
            t0,
            Verdict {
                good: true,
                answered: 1,
                targets: 1,
            },
        );
        while wd.poll_action().is_some() {}
        let at = t0 + s(3.0);
        wd.handle_event(at, Input::AdminDown);
        assert_eq!(wd.poll_action(), Some(Action::LinkUp { attempt: 0 }));
        assert_eq!(
            wd.state(),
            State::Suspect,
            "the kernel's word is a state change at once (the fix went first)"
        );
        assert!(matches!(
            wd.poll_action(),
            Some(Action::Transition {
                to: State::Suspect,
                ..
            })
        ));
        assert_eq!(wd.heals(), 1);
        wd.set_held(at, true);
        wd.handle_event(at, Input::AdminDown);
        assert_eq!(wd.poll_action(), None, "held");
        let mut p = policy();
        p.layers.set(Layer::AdminDown, "heal").unwrap();
        let mut wd = Decider::new(p, t0, 1);
        wd.handle_event(at, Input::AdminDown);
        assert!(
            !std::iter::from_fn(|| wd.poll_action()).any(|a| matches!(a, Action::LinkUp { .. })),
            "on-admin-down = heal: the ladder, after fail-after"
        );
    }

    /// Layers set otherwise by the config: upstream = heal climbs the ladder, no-route =
    /// ignore fails no round.
    #[test]
    fn the_policy_is_the_configs() {
        let mut p = policy();
        p.layers.set(Layer::Upstream, "heal").unwrap();
        let mut sim = Sim::judged(p, |t| t >= 5.0, |_| (Layer::Upstream, false));
        sim.run(100.0);
        assert_eq!(sim.heals()[0].0, 16.0);
        let mut p = policy();
        p.layers.set(Layer::NoRoute, "ignore").unwrap();
        let mut sim = Sim::judged(p, |t| t >= 5.0, |_| (Layer::NoRoute, false));
        sim.run(100.0);
        assert!(sim.heals().is_empty());
        assert_eq!(sim.wd.state(), State::Up);
    }

    /// An ignored layer's round is good, and the reason says why.
    #[test]
    fn an_ignored_layer_says_so_in_the_reason() {
        let mut sim = Sim::judged(
            family(policy()),
            |_| true,
            |_| (Layer::GatewaySilent, false),
        );
        sim.run(60.0);
        assert_eq!(
            sim.reasons(),
            vec!["ipv4 first round good (gateway-silent ignored: 0/1 targets answered)"]
        );
        assert!(sim.heals().is_empty());
    }

    /// A diagnosis that flaps between two healing layers every round starts the ladder over
    /// once for the second layer, and from then on escalates (each layer starts over once
    /// per outage: otherwise the outage would stay at attempt 1 for ever and the last rung
    /// never come); steps never run back to back.
    #[test]
    fn a_flapping_layer_still_escalates_and_never_runs_steps_back_to_back() {
        let mut p = policy();
        p.fail_after = 1;
        p.steps = 3;
        let flap = |t: f64| {
            if (t as u64 / 2) % 2 == 0 {
                (Layer::NoRoute, false)
            } else {
                (Layer::GatewayDead, false)
            }
        };
        let mut sim = Sim::judged(p, |t| t >= 5.0, flap);
        sim.run(600.0);
        let heals = sim.heals();
        assert!(heals.len() >= 5, "{heals:?}");
        let said = sim.announced();
        let over = said
            .iter()
            .filter(|a| a.ends_with("ladder starts over"))
            .count();
        assert_eq!(over, 1, "one start-over, for the second layer: {said:?}");
        assert!(
            said.iter()
                .skip(1)
                .all(|a| a.ends_with("again: the ladder goes on")),
            "{said:?}"
        );
        // Steps take 1 s; the gap is at least the minimum backoff less its 10% jitter.
        for w in heals.windows(2) {
            let gap = w[1].0 - (w[0].0 + 1.0);
            assert!(gap >= 27.0 - 1e-6, "steps {gap}s apart: {heals:?}");
        }
        let attempts: Vec<u32> = heals.iter().map(|h| h.1).collect();
        assert!(
            attempts.windows(2).skip(1).all(|w| w[1] == w[0] + 1),
            "escalating after the one start-over: {attempts:?}"
        );
        assert!(
            heals.iter().any(|h| h.2 == 2),
            "the last rung came: {heals:?}"
        );
    }
}
