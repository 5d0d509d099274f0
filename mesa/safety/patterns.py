"""The rule layer's data: risk patterns, idioms, context markers and spelling normalisation.

Every regular expression here runs on *normalised* text (see
:func:`mesa.safety.rules.normalize`): lower case, straight apostrophes,
shorthand expanded (``im`` → ``i'm``, ``wanna`` → ``want to``), leetspeak and
common misspellings of the key words repaired, letter runs collapsed.

A :class:`RiskPattern` says what a match means (``category``, ``level``) and
which context checks apply to it:

- ``negatable``: "I would never kill myself" does not count (the risk itself
  is not a negation, unlike "I don't want to live anymore").
- ``first_person``: the pattern does not name its subject ("want to die"), so
  the clause's last subject must be the speaker ("my brother wants to die" does
  not count; "it makes me want to die" does).
- ``past_sensitive``: "when I was 15 I tried to kill myself" / "I used to cut
  myself" count as history, not as current risk, unless the message says it is
  back ("again", "lately", "these days", ...).
- ``fiction_sensitive``: in a sentence about a story, film, song or character,
  or inside quotation marks that report someone's words, it does not count.

Matches that fail a check are kept as ``low`` evidence (a signal, not a crisis).
Users add their own patterns with ``SafetyPolicy(extra_patterns=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["IDIOMS", "PATTERNS", "RiskPattern"]


@dataclass(frozen=True)
class RiskPattern:
    """One rule: a regular expression on normalised text and what a match means."""

    id: str
    regex: str
    category: str
    level: str = "elevated"
    negatable: bool = True
    first_person: bool = False
    past_sensitive: bool = True
    fiction_sensitive: bool = True


# -- building blocks -----------------------------------------------------------------------------

_ADV = r"(?:(?:just|really|honestly|seriously|actually|literally|genuinely|kind of|sort of|so|even|still|sometimes|often|always|kinda|finally|totally|truly|simply|all) )*"
# intent / desire / plan before an act
_INTENT = (
    r"(?:want(?:s|ed)? to|wish(?:ed)? (?:i could|to)|need(?:s|ed)? to|going to|gonna|will|'ll|plan(?:ning|ned)? (?:to|on)|"
    r"(?:think|thinking|thought|thinkin) (?:about|of|abt)|feel(?:ing)? like|ready to|about to|tr(?:y|ying|ied) to|should|"
    r"might(?: as well)?|may as well|could|wanna|decided to|mean to|intend to|urge to|urges to|considering|contemplating|"
    r"am going to|i'm going to|let me|have to|got to)"
)
_ACT_SELF_STRONG = (
    r"(?:throw(?:ing)? myself (?:off|in front of|under|from)|kill(?:ing)? (?:myself|my self)|end(?:ing)? (?:my (?:own )?life|myself|my suffering|it all|it (?:tonight|now|today|for good|forever)(?! with))|tak(?:e|ing) my (?:own )?life|"
    r"commit(?:ting)? suicide|unaliv(?:e|ing) (?:myself|me)|unalive|off(?:ing)? myself|hang(?:ing)? myself|shoot(?:ing)? myself|"
    r"drown(?:ing)? myself|kms|ctb|self[- ]?delete|delete myself|neck myself|slit my (?:wrists?|throat)|sewer ?slide|commit sudoku)"
)
_ACT_SELF_WEAK = (
    r"(?:end(?:ing)? everything(?=\s*(?:$|[.!?]))|walk(?:ing)? into (?:the|a) (?:sea|ocean|river|lake|water)|end(?:ing)? things (?:for good|forever|permanently)(?! with)|stop (?:being alive|living|breathing)(?! (?:in|with|like|for|under)\b)|end(?:ing)? (?:it all|it (?:now|tonight|today|for good|forever)|it(?=\s*(?:$|[.!?]|for good|once and for all)))|overdos(?:e|ing)|od|kys|rope(?: myself)?|"
    r"jump(?:ing)? (?:off|from) (?:a|the|that|this|my) (?:\w+ )?(?:bridge|building|roof|cliff|balcony|ledge|tower|overpass|window|parking garage)|"
    r"(?:jump|step|walk)(?:ing)? in front of (?:a|the) (?:train|bus|car|truck|subway)|drive (?:my car |the car )?(?:off|into) (?:a|the) (?:cliff|bridge|wall|tree|truck|river|lake|ocean|traffic|pole)|(?:drive|walk|step|run|swerve) (?:\w+ )?into (?:oncoming )?traffic|crash(?:ing)? my car(?: on purpose)?|"
    r"not exist|stop existing|disappear forever|not wake up)"
)
_SELF_HARM_ACT = r"(?:cut(?:ting)?|burn(?:ing|t)?|hurt(?:ing)?|harm(?:ing)?|scratch(?:ing)?|hit(?:ting)?|punch(?:ing)?|bit(?:e|ing)|punish(?:ing)? and hurt(?:ing)?|starv(?:e|ing)|mutilat(?:e|ing)|carv(?:e|ing) (?:into )?)"
_SELF_HARM_PAST = r"(?:cut|burned|burnt|hurt|harmed|scratched|starved|carved into|punched|hit)"
# A modifier word before a person noun ("my ex's new girlfriend", "the kid who ..."): never a preposition, so
# "kill my time with friends" does not reach "friends".
_MODIFIER = r"(?:(?!(?:with|for|at|in|on|to|of|from|and|or|by|about)\b)[\w'-]+ )"
_PERSON_NOUN = (
    r"(?:wife|husband|ex|boyfriend|girlfriend|bf|gf|partner|fianc[eé]e?|lover|boss|manager|supervisor|mom|mum|mother|dad|"
    r"father|parents?|brother|sister|son|daughter|kid|kids|baby|newborn|toddler|child|children|neighbou?r|teacher|coworker|"
    r"co-worker|colleague|roommate|flatmate|housemate|friend|family|classmates?|class|school|bully|bullies|stepdad|stepfather|"
    r"stepmom|stepmum|stepmother|stepbrother|stepsister|uncle|aunt|grandad|granddad|grandpa|grandfather|grandma|grandmother|"
    r"gran|nan|cousin|nephew|niece|landlord|guy|guys|girl|girls|man|men|woman|women|bloke|lad|kid|bitch|bastard|carer|"
    r"social worker|nurse|doctor|driver|cyclist|in-laws?|mother-in-law|father-in-law|brother-in-law|sister-in-law|mother in law|"
    r"father in law|brother in law|sister in law|dealer|ex-wife|ex-husband)"
)
_PERSON = (
    r"(?:him|her|them|someone|somebody|everyone|everybody|people|anyone|myself and (?:him|her|them)|"
    rf"(?:my|his|her|that|this|the|those|these|our|their|your) {_MODIFIER}{{0,3}}?{_PERSON_NOUN}s?)"
)
_ABUSER_NOUN = (
    r"(?:husband|wife|boyfriend|girlfriend|bf|gf|partner|fianc[eé]e?|dad|father|mom|mum|mother|stepdad|stepfather|stepmom|"
    r"stepmum|stepmother|step-dad|step-mom|step-mum|step dad|step mum|stepbrother|step brother|stepsister|uncle|aunt|brother|"
    r"sister|ex|parents?|family|teacher|coach|boss|grandpa|grandfather|grandad|granddad|grandma|nan|cousin|fianc[eé]e?|"
    r"roommate|flatmate|landlord|pimp|guardian|carers?|caregivers?|care workers?|nurses|mother-in-law|father-in-law|"
    r"mother in law|father in law|in-laws|foster (?:dad|mum|mom|parents?|carers?))"
)
_ABUSER = rf"(?:he|she|they|(?:my|our) {_MODIFIER}{{0,3}}?{_ABUSER_NOUN}|the (?:carers?|nurses|care workers?|staff))"
# someone the writer speaks for: a child, sibling or elder being hurt now
_VICTIM_NAMED = (
    rf"(?:my {_MODIFIER}{{0,2}}?(?:brother|sister|son|daughter|baby|kids?|children|child|mum|mom|mother|dad|father|nan|"
    r"gran|grandma|grandad|grandpa|grandmother|grandfather|siblings?)|(?:her|his|the) (?:baby|kids|children))"
)
_VICTIM_PRONOUN = (
    r"(?:him|her|them)(?=\s*(?:$|[.,;!?)]|and\b|when\b|if\b|every\b|again\b|until\b|till\b|so\b|too\b|really\b|all the\b|"
    r"while\b|because\b|cos\b|hard\b|in front\b|but\b|whenever\b|daily\b|at night\b|with (?:a|his|her|the) (?:belt|cable|stick|spoon|wooden|iron|cigarette)))"
)
_VICTIM = rf"(?:me|us|{_VICTIM_NAMED}|{_VICTIM_PRONOUN})"
# who hurts "him"/"her" in the writer's own family: "my grandad's wife", "my daughter's dad", "my stepdad" (not
# "my coworker's husband", someone else's household)
_KIN_ABUSER = (
    r"(?:he|she|they|(?:my|our) (?:(?:grandad|granddad|grandpa|grandma|nan|gran|dad|mum|mom|brother|sister|son|daughter|"
    rf"baby|kids?|children)'s )?(?:(?!(?:with|for|at|in|on|to|of|from|and|or|by|about)\b)[\w-]+ ){{0,2}}?{_ABUSER_NOUN})"
)
_HARM_VERB_3P = r"(?:hits|beats|physically hurts|chokes|strangles|kicks|slaps|punches|rapes|abuses|molests|burns|attacks|assaults|bruises|starves|pinches|smacks|bites|whips|headbutts)"
_HARM_VERB_ING = r"(?:hitting|beating|raping|abusing|hurting|choking|strangling|molesting|kicking|slapping|punching|burning|bruising|pinching|starving|attacking)"
_HARM_VERB_PAST = r"(?:hit|beat|physically hurt|choked|strangled|kicked|slapped|punched|raped|abused|molested|burned|attacked|assaulted|shoved|pushed|drugged|headbutted|bit)"
_NOT_FIGURATIVE = r"(?! up\b| back\b| like\b| as\b| that\b| out\b| at\b| in (?:a|the|every|chess|cards)\b| to (?:it|the)\b| by\b| away\b| around\b| aside\b| with(?: (?:a|the|his|her|their|this|that) (?:\w+ )?(?:question|news|request|idea|offer|bill|fine|lawsuit|deadline|joke|comment|line|fact|truth)\b|\s*[,.!?]|\s*$))"

# intent, plan or urge to act against another person ("gonna", "plotting to", "i keep imagining")
_HARM_INTENT = (
    r"(?:going to|gonna|will|'ll|want to|wanna|plan(?:ning)? to|plotting to|(?:planning|plotting|working out|worked out|"
    r"figured out|looking up|looked up) how to|about to|ready to|need to|have to|(?:keep )?think(?:ing)? (?:about|of)|"
    r"(?:keep )?imagin(?:e|ing)|dream(?:ing)? (?:about|of)|fantasi[sz](?:e|ing) about|feel like|urges? to|tempted to|"
    r"decided to|swear i'll|swear i will|could easily|literally could)"
)
# "go round my ex's house and ...", "go next door and ..."
_GO_AND = r"(?:(?:go|come|drive|walk|head|get) [^.,;!?]{0,40}? and )"
# an act of violence against a person (the object always named, so "beat my brother at mario kart" is not one)
_VIOLENCE = (
    rf"(?:(?:kill(?:ing)?|murder(?:ing)?|shoot(?:ing)?|stab(?:bing)?|strangl(?:e|ing)|poison(?:ing)?|hurt(?:ing)?|attack(?:ing)?|"
    r"harm(?:ing)?|choke|choking|drown(?:ing)?|suffocat(?:e|ing)|smother(?:ing)?|punch(?:ing)?|slap(?:ping)?|kick(?:ing)?|"
    r"glass(?:ing)?|knife|batter(?:ing)?|hunt(?:ing)? (?:\w+ )?down|jump(?:ing)?|torture|torturing|run (?:over|down)|"
    rf"ram(?:ming)?|beat(?:ing)? up) {_PERSON}\b(?! (?:feelings|chances|career|reputation|pride|ego|business|sales|up|back|at)\b)|"
    rf"hit(?:ting)? {_PERSON}(?! up\b| back\b| with (?:the|a|this|that) (?:news|question|idea|truth|bill|fact))\b|"
    rf"(?:beat|batter|kick|stab|punch) {_PERSON}\b[^.!?]{{0,40}}?\b(?:to death|until|till|senseless|unconscious|black and blue|bloody|to a pulp|half to death)\b|"
    rf"beat the (?:shit|crap|hell|life|living daylights) out of {_PERSON}|"
    rf"(?:push|throw|shove) {_PERSON} (?:down|off|out of|in front of|into|under)\b|"
    rf"(?:put|send) {_PERSON} in (?:the |a )?(?:hospital|ground|grave|coffin|wheelchair|morgue)|"
    rf"end (?:him|her|them)\b|throw acid (?:at|on|in) {_PERSON}|"
    rf"smash {_PERSON}\b(?=[^.!?]{{0,60}}\b(?:bat|hammer|crowbar|bottle|brick|head|face|skull)\b)|smash (?:his|her|their) (?:head|face|skull)|"
    r"(?:burn|torch) (?:his|her|their|my \w+'s) (?:house|flat|home|place)|set fire to (?:his|her|their|my \w+'s) (?:house|flat|home|place|car)|"
    rf"(?:burn|torch|set fire to) [^.!?]{{0,30}} with (?:him|her|them) (?:in|inside) it)"
)

# "my husband comes home and ...", "my mum's partner gets drunk then ...": a short run before the act
_ABUSE_GAP = r"(?:[^.,;!?]{0,50}? (?:and|then) )"

PATTERNS: tuple[RiskPattern, ...] = (
    # -------- suicide: imminent (means, plan, time, attempt in progress) --------
    RiskPattern(
        "suicide_attempt_in_progress",
        r"\bi(?:'ve| have)? (?:just |already )?(?:took|taken|swallowed|downed|overdosed on) (?:like |about |around |maybe |over |nearly |almost )?(?:a (?:bunch|lot|handful|whole bottle) of |all (?:of )?|"
        r"(?:[1-9]\d+|twenty|thirty|forty|fifty|dozens of|dozens) (?:of )?|too many |the whole (?:bottle|pack|box) of |a whole (?:bottle|pack|box) of |enough |a (?:bottle|box|pack|handful|fistful) of )(?:(?:my|the|of) )*(?:\w+ )?(?:pills|tablets|meds|medication|painkillers|sleeping pills|tylenol|paracetamol|ibuprofen|insulin|antidepressants|"
        r"sleeping tablets|oxy|oxycodone|xanax|benzos|opioids|morphine|lithium|aspirin|sertraline|prozac)\b",
        "suicide",
        "imminent",
        negatable=True,
    ),
    RiskPattern("suicide_overdosed", r"\bi(?:'ve| have)? (?:just |already )?(?:od'?d|overdosed|took an overdose)\b", "suicide", "imminent"),
    RiskPattern(
        "suicide_at_location",
        r"\bi(?:'m| am) (?:standing|sitting|on|at|up) (?:on |at )?(?:the |a )?(?:edge of (?:the |a )?)?(?:bridge|ledge|roof|rooftop|train tracks|tracks|cliff|balcony|railing)\b",
        "suicide",
        "imminent",
    ),
    RiskPattern(
        "suicide_means_ready",
        r"\b(?:the |my )?(?:rope|noose|gun|pills|razor|blade) (?:is|are) (?:ready|loaded|in my hand|here with me|next to me|tied)\b|\bnoose (?:is )?(?:ready|tied|up)\b|\b(?:tied|made|bought) a noose\b|\bi(?:'m| am) holding (?:the |a |my )?(?:gun|pills|knife|razor|blade|rope)\b",
        "suicide",
        "imminent",
        negatable=False,
    ),
    RiskPattern(
        "suicide_goodbye",
        r"\b(?:this is (?:my )?(?:final |last )?goodbye|goodbye forever|my (?:last|final) (?:message|words|night|day)|"
        r"by the time you read this|(?:wrote|written|write|writing|left|leaving|finished) (?:a |my )?(?:suicide |goodbye )(?:note|letter)s?|goodbye (?:everyone|everybody|world|cruel world|all|forever)(?=\s*(?:$|[.!?]))|"
        r"(?:wrote|writing) (?:letters|notes) to (?:everyone|my family|my kids|my parents) (?:to say |saying )?goodbye|"
        r"(?:won't|will not|not going to|am not going to) be (?:here|around|alive) (?:tomorrow|by morning|much longer|after tonight|for much longer|for long)|"
        r"(?:after|by) tonight (?:it|nothing|none of this) (?:won't|will not|doesn't|won't) matter)",
        "suicide",
        "imminent",
        negatable=False,
    ),
    # -------- suicide: explicit ideation / intent --------
    RiskPattern(
        "suicide_explicit_act",
        rf"\b(?:{_INTENT} {_ADV}(?:{_ACT_SELF_STRONG}|{_ACT_SELF_WEAK})|(?:^|\bi(?:'m| am)? ){_ADV}{_ACT_SELF_STRONG})\b",
        "suicide",
        first_person=True,
    ),
    RiskPattern("suicide_kill_myself", r"\b(?:kill(?:ing|ed)?|killin) (?:myself|my self)\b", "suicide"),
    RiskPattern("suicide_end_my_life", r"\b(?:end(?:ing|ed)?|tak(?:e|ing)|took) my (?:own )?life\b", "suicide"),
    RiskPattern("suicide_shorthand", r"\b(?:kms|sewer ?slide|sewerslide|unaliv(?:e|ing) myself|self[- ]?delet(?:e|ing) myself|commit(?:ting)? sudoku|ctb)\b", "suicide"),
    RiskPattern(
        "suicide_kys_self",
        r"\b(?:i(?:'m| am| will|'ll)?|gonna|going to|should|want to|need to|might|time to|about to|finna|ready to) (?:\w+ )?kys\b",
        "suicide",
    ),
    RiskPattern(
        "suicide_suicidal",
        r"\b(?:i(?:'m| am|'ve| have)? (?:been |feeling |felt |feel |getting |becoming |so |very |really |kind of |kinda |a bit |a little |pretty |extremely |actively |passively |quite )*suicidal|"
        r"(?:having|have|had|getting|get|with) (?:\w+ )?suicidal (?:thoughts|ideation|feelings|urges|thinking)|"
        r"(?:plan|planning|planned|plotting|preparing|researching|attempting) (?:my |a )?suicide|(?:think|thinking|thought|thoughts|fantasi[sz]\w*|daydream\w*|dream\w*|obsess\w*|imagin\w*) (?:about|of) (?:suicide|committing suicide|ending it|ending it all|not being here|being dead|dying|my (?:own )?death|not existing|not being alive|not waking up)|"
        r"(?:imagin|pictur|plann|think)\w* (?:about |of )?my (?:own )?funeral|"
        r"(?:suicide|dying|death|killing myself|ending it(?: all)?|ending my life) is all i (?:can )?(?:think|thinking) (?:about|of)|"
        r"all i (?:can )?(?:think|thinking) (?:about|of) is (?:suicide|dying|death|killing myself|ending it(?: all)?|ending my life)|"
        r"(?:suicide|death|dying|killing myself|ending it(?: all)?|ending my life) (?:is|seems(?: like)?|feels(?: like)?) (?:the |my )?(?:only|best|last|right) (?:option|way|answer|choice|solution|way out)|"
        r"(?:don't|can't|do not|cannot) see myself (?:being )?(?:alive|around|here|living) (?:next|in|by|much longer|for (?:much )?long|a year from now))\b",
        "suicide",
        first_person=True,
    ),
    RiskPattern(
        "suicide_death_wish",
        r"\b(?:(?:want|wanna|wish|need|ready) (?:to )?(?:just )?be (?:gone|dead)(?! (?:for|on|to|from|by|in|at|next|this|until|till|before|when)\b)|(?:want|need|have|got)(?:s)? to die(?! (?:my|your|her|his|the|it) )|wanna die|feel like (?:dying|i want to die)|wish(?:ed|ing)? (?:i (?:was|were|could be) (?:dead|gone|never born)|i (?:could|would) (?:just )?die|to die|i had never been born|i'd never been born|i wasn't born|i (?:could|would) disappear forever)|"
        r"(?:hope|pray|praying|hoping) (?:that )?i (?:die|don't wake up|never wake up|won't wake up|get hit by)|"
        r"(?:deserve|ready|better off) (?:to die|dead|to be dead|not existing|not being alive|not being here)|can't wait to (?:finally )?(?:be dead|die)\b|time (?:for me )?to go (?:for good|forever|permanently)|(?:peaceful|nice|easier|better|a relief|good|lovely) (?:it )?(?:would be |to )+(?:just )?(?:not exist|die|be dead|be gone|not wake up|never wake up|disappear forever|not be here|stop existing)|should (?:just )?(?:die|be dead)|let me die|"
        r"(?:go to sleep|fall asleep|sleep) and (?:never|not) wake up|(?:want|wish|need) (?:just )?(?:to )?(?:sleep|go to sleep|fall asleep|rest) forever|wish i could (?:just )?(?:sleep|go to sleep|fall asleep|rest) forever|(?:what if|wish|if only) i (?:just )?(?:didn't|did not|don't|wasn't|weren't) (?:exist|alive|here|around)(?: anymore)?|(?:don't know|idk|not sure) why i(?:'m| am) still (?:alive|here|breathing)|(?:thinking|thought|think) about how (?:i would|i'd|i could|i'll|to) do it\b|(?:i'm|i am) (?:so )?(?:tired of fighting|ready to let go)(?=\s*[.!?]|\s*$| for my life| to stay alive| to live)|nothing (?:left )?(?:to live for|left for me(?: here| anymore)?)|(?:nobody|no one|noone) (?:would|will|'d|is going to) (?:even )?miss me\b|(?:nobody|no one|noone) (?:cares|would care|will care|gives a \w+) (?:if|whether) i (?:live or die|die|died|live)\b|(?:nobody|no one|noone) (?:would|will|'d) (?:even )?(?:miss me|care|notice|cry) if i (?:died|disappeared|was gone|were gone|was dead|were dead|killed myself|wasn't here|weren't here|left forever)|(?:i'd|i would) rather (?:be dead|die|not be alive|not exist)(?! than)|"
        r"(?:nobody|no one|noone|none of them|nobody here) (?:would|will|'d) (?:even )?(?:miss|notice|care about) me|(?:nobody|no one) (?:would|will) (?:even )?(?:notice|care) if i (?:was|were|'m) (?:gone|dead)|"
        r"\bi (?:just |really )?want out(?: of (?:life|this life|this world|existence))?(?=\s*(?:$|[.!?]))|\bi(?:'m| am) going to die (?:tonight|today|this weekend)\b|\bdone (?:living|being alive|existing)\b|\bdecided (?:that )?(?:i(?:'m| am) going to|to) die\b|why (?:should|would|do|even) i (?:keep|bother|go on|continue) (?:living|being alive|staying alive|existing|going on)|(?:wish|hope) i (?:never|don't|won't|wouldn't) wake up|"
        r"don't want to wake up(?: tomorrow| again| anymore)?|"
        r"disappear (?:forever|for good|permanently)|(?:wish|want) (?:i could|to) (?:stop existing|not exist|cease to exist))\b",
        "suicide",
        first_person=True,
    ),
    # -------- suicide: questions about lethality (method, amount, height, time to die) --------
    RiskPattern(
        "suicide_lethality_question",
        r"\bhow long (?:does it|would it|will it|it) (?:take|takes) to die\b|"
        r"\bhow (?:many|much) (?:\w+ ){0,4}(?:would it take |does it take |do you need |would i need |to take )?to (?:die|kill (?:me|myself|a person)|be (?:fatal|lethal|deadly)|stop (?:my|your|a) heart|not wake up)\b|"
        r"\bis (?:\d+|a|one|two|three|half a|a whole|the whole) (?:\w+ )?(?:pills?|tablets?|tylenol|paracetamol|ibuprofen|insulin|bottle|pack|mg|grams?) (?:\w+ )?(?:enough|fatal|lethal|deadly)\b|"
        r"\bwhat (?:floor|height|storey|story)\b[^.?!]{0,50}\b(?:fall|jump)\b[^.?!]{0,40}\b(?:certain|fatal|die|kill|sure|enough|deadly)\b|"
        r"\b(?:most )?(?:painless|quickest|surest|easiest) (?:way|method) to (?:die|go|end it|kill myself)\b",
        "suicide",
        past_sensitive=False,
    ),
    # -------- suicide: implicit --------
    RiskPattern(
        "suicide_implicit_better_off",
        r"\b(?:everyone|everybody|they|my (?:\w+ )?(?:family|kids|parents|friends|wife|husband|partner)|people|the world|you all|y'all|all of you|it|things|life)"
        r"(?: would| will|'d|'ll| would all| will all) (?:be )?(?:so much |much |a lot |all )?(?:better|happier) (?:off )?without me\b|"
        r"\b(?:happier|better|easier|fine|relieved|okay|ok|a relief|best) (?:for everyone )?(?:off )?(?:if|when|once) i(?:'m| am| was| were)? (?:just )?(?:dead|gone|not here|not around|died|disappeared|wasn't here|weren't here|was not here|wasn't around|didn't wake up|don't wake up|ended it)\b|"
        r"\bif i (?:don't|didn't|never) wake up(?: tomorrow| again)?,? (?:that|it) (?:would|'d) (?:honestly |really |actually |just )?be (?:fine|okay|ok|a relief|good|better|for the best)\b|\b(?:better|happier) off without me\b|\bbetter off dead\b",
        "suicide",
        negatable=False,
    ),
    RiskPattern(
        "suicide_implicit_no_will_to_live",
        r"\b(?:(?:don't|do not|no longer|dont|never) (?:really |even |actually )?want to (?:be alive|live|exist|be here|stay alive|keep living|go on|wake up|be around|be on this earth)(?: either| at all| really| on this earth)?(?: anymore| any more| any longer| now| tomorrow|$| like this|(?<=either)|(?<=at all))|"
        r"(?:not sure|don't know if|unsure if|not certain) i want to (?:live|be alive|keep living|go on|be here|keep going)|"
        r"(?:no|not a|not any|(?:don't|do not|can't|cannot|couldn't) (?:see|find|have|think of|come up with) (?:a|any)|lost (?:my|the|any)) (?:single |good |real )?(?:reason|point|will|purpose) (?:to|in|for) (?:me |my )?(?:live|living|go on|going on|be alive|being alive|keep going|keep living|stay alive|staying alive)|"
        r"what(?:'s| is) the point anymore|what(?:'s| is) the point (?:of|in) (?:anything|trying|it all|going on) anymore|what(?:'s| is) the point (?:of|in) (?:living|life|being alive|going on|staying alive|me being here|my life|even living|any of it anymore)|"
        r"(?:can't|cannot) (?:go on|keep going|do this|live like this|take (?:it|this|the pain)|keep living)(?: anymore| any more| any longer)?(?: i just want| i want| i'm done| i give up)?(?: it to end| to die| to disappear)|"
        r"can't (?:go on|keep living|live|continue living|keep going) (?:like this|this way)(?: anymore| any more| any longer)?|can't (?:go on|keep living|live|keep going) (?:anymore|any more|any longer)|(?:can't|cannot|don't think i can|not sure i can) (?:keep going|go on|hold on|keep living|last) (?:much longer|any longer|anymore|any more)|"
        r"tired of (?:living|being alive|life itself|existing)|hate (?:being alive|existing|living)\b|(?:don't|do not|no longer) deserve to (?:live|be alive|exist)|done with (?:living|life|being alive|existing|everything for good)|"
        r"life (?:isn't|is not|is no longer) worth (?:living|it anymore)|not worth living)\b",
        "suicide",
        negatable=False,
        first_person=True,
    ),
    RiskPattern(
        "suicide_implicit_end",
        r"\b(?:want|wanted|need|wish|just want|just need) (?:it|everything|this|the pain|all of this|all this|life) (?:all )?to (?:end|stop|be over)[.,!]? ?(?:for good|forever|permanently|once and for all)\b|"
        r"\b(?:want|need|wish|ready) (?:it|everything|all of this|all this) (?:all )?to (?:end|be over)(?: now)?$|"
        r"\b(?:want|need|wish) (?:it|everything) all to (?:end|stop|be over)\b|"
        r"\bend (?:the|my) (?:pain|suffering) (?:for good|forever|permanently|once and for all)\b|"
        r"\bmake (?:it|the pain|everything) stop (?:for good|forever|permanently)\b|\bpermanent (?:way out|solution|escape)\b|"
        r"\b(?:the only|only one|one) way out\b|\bno way out\b|\bway out (?:except|but|other than|apart from) (?:one|death|dying|suicide|killing myself|ending it)\b|\b(?:won't|will not) (?:be a (?:burden|problem) (?:to anyone )?(?:for )?(?:much longer|anymore|any more|soon)|have to (?:deal with|worry about) me (?:much longer|anymore|for long))\b|"
        r"\bsoon (?:it|none of this|nothing) (?:won't|will not|will|is not going to) (?:matter|be a problem)(?: anymore)?\b|"
        r"\b(?:i'm|i am) (?:just )?(?:a|such a) (?:burden|weight) (?:to|on|for) (?:everyone|everybody|my family|all of them|them all|the world)\b",
        "suicide",
        negatable=False,
        first_person=True,
    ),
    RiskPattern(
        "suicide_giving_away",
        r"\b(?:giv(?:e|ing)|gave) (?:all )?my (?:stuff|things|belongings|possessions|pets?|clothes|valuables) away\b|\b(?:giv(?:e|ing)|gave) away (?:all )?(?:of )?my (?:stuff|things|belongings|possessions|pets?|cat|dog|clothes|books|games|savings|valuables)\b|"
        r"\b(?:i'm|i am) saying (?:my )?goodbyes?(?: now| to you)\b|\bthis is goodbye\b|\b(?:saying|said|say) (?:my )?goodbyes? to (?:everyone|everybody|my family|people|all my friends)\b|\bput my (?:affairs|things) in order\b|"
        r"\b(?:wrote|written|writing|updated|made) (?:my|a) will\b(?= .*\b(?:soon|won't need|goodbye|end|done)\b)",
        "suicide",
        negatable=False,
        past_sensitive=False,
    ),
    RiskPattern(
        "suicide_method_seeking",
        r"\b(?:how (?:many|much) (?:\w+ ){0,5}(?:to|would|will|does it take to|do i need to|until i|before i) (?:die|kill|be lethal|be fatal|overdose|od|stop my heart|end it|not wake up)|"
        r"(?:lethal|fatal|deadly) (?:dose|amount|quantity|overdose)|(?:painless(?:est)?|easiest|quickest|fastest|best|surest|least painful|most effective) (?:way|method|ways|methods) (?:to|of) (?:die|dying|kill myself|end (?:it|my life)|commit suicide|suicide|overdose|hang)|"
        r"how to (?:kill myself|commit suicide|end my life|hang myself|overdose|slit my wrists|die painlessly|die in my sleep)|"
        r"(?:how (?:high|tall|far)|what height) (?:\w+ ){0,4}(?:to|would|do) (?:survive|die|kill|be fatal|be lethal)|"
        r"(?:tallest|highest) (?:bridge|building|cliff|parking garage)s? (?:near|around|in|close to) (?:me|here|my)|"
        r"where (?:can|could) i (?:buy|get) (?:a gun|a rope|pills|a lethal))\b",
        "suicide",
        negatable=True,
        past_sensitive=False,
    ),
    RiskPattern(
        "suicide_purpose",
        r"\bso (?:that )?i (?:can|could|will|'ll|would|might) (?:finally )?(?:die|be dead|not wake up|never wake up|end it|stop existing|kill myself)\b|"
        r"\b(?:tak(?:e|ing)|swallow(?:ing)?|down(?:ing)?|overdos(?:e|ing) on) every (?:single )?(?:pill|tablet|med)\b|\b(?:tak(?:e|ing)|swallow(?:ing)?|down(?:ing)?|overdos(?:e|ing) on) (?:all|every one|the whole (?:bottle|pack|box)) (?:of )?(?:my |the |these |those )?(?:\w+ )?(?:pills|meds|medications?|tablets|painkillers|antidepressants|prescriptions?|insulin|tylenol|paracetamol|ibuprofen|xanax|opioids|oxy\w*)\b|"
        r"\b(?:how to )?(?:tie|tying|make|making|buy|buying|bought) (?:a|the) noose\b|"
        r"\b(?:when|if|once|after) i(?:'m| am) (?:gone|dead|not around|no longer here)\b[^.!?]{0,40}\b(?:won't have to|will be (?:happier|better|relieved|fine)|at least|finally)\b|"
        r"\b(?:use|turn|point|put) (?:it|the gun|a gun|my gun|the knife|the blade) (?:on|at|to|against) (?:myself|my head|my chest|my throat)\b|\b(?:gun|pistol) (?:to|against) my (?:head|temple|mouth)\b|"
        r"\b(?:stockpil\w*|sav(?:ing|ed) up|hoard(?:ing|ed)?|collect(?:ing|ed)) (?:all )?(?:of )?(?:my |the |some |enough )?(?:pills|meds|medications?|tablets|sleeping pills|painkillers)\b",
        "suicide",
        first_person=True,
    ),
    RiskPattern(
        "suicide_means_acquired",
        r"\b(?:bought|got|buying|ordered|getting) (?:a |some |the )?(?:rope|noose)\b|"
        r"\b(?:vodka|alcohol|whiskey|wine|booze|drinks?) and (?:my |the |some |all my |a bunch of )?(?:sleeping )?(?:pills|meds|tablets)\b|"
        r"\btonight(?:'s| is) the night\b(?=.{0,400}\b(?:pills|rope|gun|end|die|goodbye|bridge|blade)\b)|\b(?:pills|rope|gun|bridge|blade)\b.{0,400}\btonight(?:'s| is) the night\b",
        "suicide",
    ),
    RiskPattern(
        "suicide_preparations",
        r"\b(?:letters?|notes?|will|goodbyes?) [^.!?]{0,50}in case (?:something happens to me|i'm (?:not|no longer) (?:here|around)|i don't make it|i die|i'm gone)\b|"
        r"\b(?:pills|tablets|meds|blades?|razors?|rope) (?:are |is )?(?:lined up|counted out|counted|laid out|sorted out|in front of me|on my (?:desk|bed|nightstand|table))\b|"
        r"\b(?:going to|gonna|will|'ll) do it (?:tonight|today|now|this time)\b(?=.*\b(?:goodbye|made up my mind|decided|pills|rope|bridge|gun|no one can stop me|nobody can stop me)\b)",
        "suicide",
        first_person=True,
    ),
    RiskPattern(
        "suicide_means_contemplation",
        r"\b(?:pills|rope|gun|knife|blade|razor|bridge|ledge|noose|tracks|train tracks)\b[^.!?]{0,60}\b(?:thinking about|think about|considering) (?:it|doing it|using (?:it|them)|stepping|jumping|walking)\b",
        "suicide",
        negatable=False,
    ),
    RiskPattern(
        "command_voices",
        r"\b(?:voices?|something|a voice|god|the devil|it) (?:is |are |keep |keeps )?(?:telling|tell|tells|told|ordering|orders|commanding|commands) me to (?:hurt|kill|harm|cut|end|burn) (?:myself|me|my life|someone|somebody|him|her|them|people|my \w+)\b",
        "self_harm",
        negatable=True,
        past_sensitive=True,
    ),
    # -------- self-harm --------
    RiskPattern(
        "self_harm_act",
        rf"\b(?:i(?:'ve| have)?(?: been| keep| started| start| still| just)* {_SELF_HARM_ACT}|i {_SELF_HARM_PAST}) myself(?! (?:shaving|cooking|by accident|accidentally|on (?:a|the|some)|while|when i (?:fell|tripped)|playing|at (?:the |work|practice|training)|lifting|running|falling|skiing|working out|at the gym|in the kitchen|up))\b",
        "self_harm",
    ),
    RiskPattern(
        "self_harm_intent",
        rf"\b{_INTENT} {_ADV}(?:cut|burn|hurt|harm|scratch|punish|starve|mutilate|carve into) myself\b(?! (?:shaving|cooking|by accident|accidentally|playing|lifting|running|up))",
        "self_harm",
        first_person=True,
    ),
    RiskPattern(
        "self_harm_explicit",
        r"\b(?:i(?:'ve| have| am|'m)? (?:been |started |start |keep |still |gone back to |went back to |back to )?(?:self[- ]?harm(?:ing|ed)?|sh'?ing)|"
        r"(?:relapsed|relapse|relapsing) (?:on |with |into |and )?(?:self[- ]?harm|sh|cutting|cut|burning)|(?:urges?|urge) to (?:self[- ]?harm|sh|cut|relapse)|"
        r"(?:my|fresh|new) (?:cuts|wounds) (?:are|is|won't|keep|from)|won't stop bleeding|(?:the )?(?:cuts?|wound) (?:is|are) (?:deep|bleeding)|"
        r"(?:blade|razor|knife|scissors|glass|lighter) (?:on|against|to|into) my (?:skin|wrist|arm|leg|thigh|throat|stomach)s?|"
        r"(?:started|start|keep|kept|been|went back to|back to|relapsed and started|urges? to start) (?:cutting|burning myself|self-harming)(?= again|\s*$|\s*[.!?,])|cutting again)\b",
        "self_harm",
        first_person=True,
    ),
    RiskPattern(
        "self_harm_bleeding",
        r"\b(?:cut|cutting|slit|sliced|cut open|burn|burning|burned|burnt|scratch\w*|carv\w*) (?:my (?:own )?|both )?(?:wrists?|arms?|thighs?|legs?|skin|stomach)\b(?! (?:on (?:a|the)|by accident|accidentally|shaving|with paper))",
        "self_harm",
        first_person=True,
    ),
    RiskPattern(
        "self_harm_hidden_tools",
        r"\b(?:hid(?:e|den|ing)?|keep|stash(?:ed)?|hoard\w*) (?:\w+ ){0,2}(?:razors?|razor blades|blades)\b|\b(?:razors?|razor blades|blades) (?:\w+ ){0,2}(?:hidden|stashed)\b|"
        r"\b(?:and|or|then|sometimes|often|just) (?:\w+ )?(?:cut|burn|hit|punch|scratch|hurt|harm)(?:s|ting|ing)? myself\b(?! (?:on (?:a|the)|by accident|accidentally|shaving|cooking|playing|up))|"
        r"\b(?:scratch|cut|pick|burn|bite|hit|punch)(?:ing|ed)? (?:at )?(?:my|myself)\b[^.!?]{0,40}\b(?:until|till) (?:they|it|i) (?:bleed|bleeds|bled)\b",
        "self_harm",
        first_person=True,
    ),
    # -------- harm to others --------
    RiskPattern(
        "harm_others_mass",
        r"\b(?:shoot(?:ing)? up|bomb(?:ing)?|blow(?:ing)? up|attack(?:ing)?|shoot(?:ing)? everyone (?:at|in)|kill(?:ing)? everyone (?:at|in)) (?:the |my |our |that |this )?(?:old |new |former )?(?:school|class|classroom|office|work|workplace|mall|church|mosque|synagogue|campus|concert|party|building|station)\b|"
        r"\bbring(?:ing)? (?:a|my|the|dad's|my dad's) (?:gun|rifle|knife|weapon|bomb) to (?:school|class|work|the office|campus|church)\b|\b(?:they'll|they will|everyone will) (?:all )?(?:pay|be sorry)\b(?= .*\b(?:gun|kill|shoot|bomb|knife|die)\b)",
        "harm_to_others",
        "imminent",
        first_person=True,
    ),
    RiskPattern(
        "harm_others_intent",
        rf"\b(?:i(?:'m| am|'ll| will|'d| would)? )?{_ADV}{_HARM_INTENT} {_ADV}{_GO_AND}?{_ADV}{_VIOLENCE}",
        "harm_to_others",
        first_person=True,
    ),
    RiskPattern(
        "harm_others_afraid_of_self",
        rf"\b(?:afraid|scared|terrified|worried|fear) (?:that )?i(?:'ll| will| might| could| am going to|'m going to) (?:\w+ )?(?:hurt|kill|harm|snap and hurt|shake|lose it and hurt|drown|smother|suffocate|hit|strangle) (?:my (?:baby|newborn|toddler|child|kids?|son|daughter|wife|husband|partner|mom|dad|dog)|him|her|them|someone|somebody)\b|"
        rf"\bfeel like i (?:could|might|will|'m going to) (?:\w+ )?(?:kill|hurt|murder|strangle|harm|drown|smother|suffocate|shake|stab) {_PERSON}\b|"
        rf"\b(?:urges?|thoughts?|fantasies|images?) (?:about|of|to) (?:killing|hurting|stabbing|shooting|harming|smothering|drowning|suffocating|strangling|shaking|poisoning|kill|hurt|stab|shoot|harm|smother|drown|suffocate|strangle|poison) {_PERSON}\b|"
        r"\b(?:put|putting|held|holding|pressed|pressing) (?:a|the) (?:pillow|cushion|bag|blanket|hand) over (?:my|his|her) (?:\w+ )?(?:baby|newborn|son|daughter|child|toddler|kid|wife|husband|partner)(?:'s)? (?:face|mouth|head)\b",
        "harm_to_others",
    ),
    RiskPattern(
        "harm_others_means_for_person",
        rf"\b(?:gun|guns|knife|rifle|pistol|shotgun|weapon|poison|rat poison|bleach|antifreeze|acid|bat|hammer|crowbar|machete|axe)\b[^.!?]{{0,30}}?\b(?:to|for) (?:kill|shoot|stab|poison|hurt|use on|deal with|attack) {_PERSON}|"
        rf"\b(?:poison|rat poison|bleach|antifreeze|arsenic|cyanide|(?:crushed |ground )?(?:\w+ )?(?:pills|tablets))\b[^.!?]{{0,40}}?\b(?:in|into) (?:my|his|her|their) [^.!?]{{0,30}}?\b(?:food|drink|tea|coffee|meal|dinner|water|wine|beer|cup|bottle)\b|"
        r"\b(?:rat poison|poison|bleach|antifreeze|arsenic|cyanide)\b[^.!?]{0,20}?\b(?:it's|its|it is|is|are) for (?:him|her|them|my \w+)\b|"
        r"\b(?:cut|cutting|tamper(?:ed|ing)? with|mess(?:ed|ing)? with|sabotag\w*) (?:the )?brakes? (?:on|of|in) (?:my|his|her|their)\b|"
        r"\bi(?:'m| am) (?:\w+ ){0,3}?(?:waiting|hiding|sat|sitting|parked|outside|going|go|heading|driving|walking|coming)\b[^.!?]{0,60}?\bwith (?:a|my|the|his|dad's|my dad's) (?:knife|gun|bat|baseball bat|hammer|crowbar|machete|rifle|pistol|blade|axe)\b|"
        r"\bi (?:have|'ve got|got|own) (?:a|my|the|dad's|my dad's) (?:gun|rifle|pistol|shotgun|knife)\b[^.!?]{0,20}\band i know where (?:he|she|they|my|the|that|this)\b",
        "harm_to_others",
        first_person=True,
    ),
    RiskPattern(
        "harm_others_weapon",
        r"\bi(?:'ve| have)? (?:got|bought|have|took|taken|loaded|grabbed) (?:a|my|the|dad's|my dad's) (?:gun|rifle|pistol|knife|weapon)\b(?= .*\b(?:him|her|them|kill|shoot|stab|pay|sorry|school|work)\b)",
        "harm_to_others",
        "imminent",
        first_person=True,
    ),
    # -------- abuse / danger from others --------
    RiskPattern(
        "abuse_ongoing",
        rf"\b{_ABUSER} {_ABUSE_GAP}?(?:(?:still|always|often|keeps?|sometimes|constantly|regularly|again|just|also|even) )*(?:{_HARM_VERB_3P}) me\b{_NOT_FIGURATIVE}|"
        rf"\b{_ABUSER}(?:'s|'re|'ve)? {_ABUSE_GAP}?(?:(?:has|have|is|are|keeps?|kept|started|starting|been|always|still|now|again) )*{_HARM_VERB_ING} (?:me|us|{_VICTIM_NAMED})\b{_NOT_FIGURATIVE}|"
        rf"\b{_KIN_ABUSER}(?:'s|'re|'ve)? {_ABUSE_GAP}?(?:(?:has|have|is|are|keeps?|kept|started|starting|been|always|still|now|again) )*{_HARM_VERB_ING} {_VICTIM_PRONOUN}|"
        rf"\b{_ABUSER} {_ABUSE_GAP}?(?:(?:still|always|often|keeps?|sometimes|constantly|regularly|just|also|even) )*(?:{_HARM_VERB_3P}|hurts|shakes) {_VICTIM_NAMED}(?! up\b| back\b| at\b| in (?:a|the) (?:game|match|race)\b)|"
        rf"\b{_KIN_ABUSER} {_ABUSE_GAP}?(?:(?:still|always|often|keeps?|sometimes|constantly|regularly|just|also|even) )*(?:{_HARM_VERB_3P}|hurts|shakes) {_VICTIM_PRONOUN}|"
        rf"\b{_ABUSER} {_ABUSE_GAP}?(?:grabs|grabbed|throws|threw|pushes|pushed|shoves|shoved|pins|pinned|drags|dragged) me (?:\w+ )?(?:against|into|onto|down|across|to the (?:floor|ground)|by (?:the|my) (?:throat|neck|hair))\b|"
        rf"\b{_ABUSER} {_ABUSE_GAP}?(?:throws|threw|throwing) (?:[\w-]+ ){{1,3}}(?:at|over) me\b|"
        rf"\b{_ABUSER}(?:'s|'re)? {_ABUSE_GAP}?(?:puts|put|had|has|wraps|wrapped|got|gets|keeps) (?:his|her|their|both) hands? (?:round|around|on) my (?:neck|throat)\b",
        "abuse",
        past_sensitive=True,
    ),
    RiskPattern(
        "abuse_recent",
        rf"\b{_ABUSER} {_ABUSE_GAP}?(?:just |again |nearly |almost |tried to |has |have |'s )?(?:{_HARM_VERB_PAST}) me(?: again)?\b{_NOT_FIGURATIVE}",
        "abuse",
    ),
    RiskPattern(
        "abuse_threat",
        r"\b(?:threaten(?:ed|s|ing)? to|(?:said|says|saying|keeps saying|told me|tells me) (?:that )?(?:if [^.,;!?]{0,40}? )?(?:he|she|they)(?:'d| would|'ll| will| is going to| was going to)) (?:kill|hurt|beat|hit|burn|shoot|stab|rape|throw acid (?:at|on|in)) "
        r"(?:me|us|my (?:\w+ )?(?:kids?|children|baby|son|daughter|mom|mum|mother|dad|nan|gran|sister|brother|dog|cat|family|pets?))\b|"
        r"\b(?:threaten(?:ed|s|ing)? to|(?:said|says|saying|told me|tells me) (?:that )?(?:if [^.,;!?]{0,40}? )?(?:he|she|they)(?:'d| would|'ll| will)) (?:have|get) me deported\b|"
        r"\b(?:scared|afraid|terrified|frightened) (?:that |of what )?(?:he|she|they|my (?:\w+ )?(?:husband|wife|boyfriend|girlfriend|partner|dad|father|mom|mother|stepdad|ex|brother))(?:'ll| will| is going to|'s going to| are going to| might| could| would| is gonna)? (?:\w+ )?(?:kill|hurt|hit|beat|rape|do to) me\b|"
        r"\b(?:he|she|they)(?:'s| is| are|'re)? (?:going to|gonna) kill me (?:if i (?:leave|tell|go to|call|report|try)|when (?:he|she|they) (?:gets?|comes?) (?:home|back|out))\b|"
        rf"\b{_ABUSER} {_ABUSE_GAP}?(?:says |said |saying |keeps saying )?(?:(?:he|she|they)(?:'s| is| are|'re) )?(?:coming|going to come) (?:for|after) me\b|"
        rf"\b{_ABUSER} {_ABUSE_GAP}?(?:put|puts|held|holds|pressed|presses|pointed|points|waved|waves) (?:a|his|her|their|the) (?:knife|gun|blade|razor|pistol|shotgun|rifle) (?:to|at|against) (?:my (?:throat|head|neck|face|chest)|me)\b",
        "abuse",
    ),
    RiskPattern(
        "abuse_sexual",
        rf"\b(?:my |a |the |this |that )?(?:uncle|stepdad|step-dad|step dad|stepfather|stepbrother|step brother|dad|father|brother|cousin|grandpa|grandfather|grandad|teacher|coach|neighbou?r|babysitter|priest|"
        rf"mom's boyfriend|mum's boyfriend|mom's friend|mum's friend|dad's friend|foster \w+|boss|pastor|tutor|man|guy|lad|adult)(?:'s friend)? (?:[\w']+ ){{0,5}}?{_ABUSE_GAP}?(?:keeps |still |always |sometimes |often )?(?:touch(?:es|ed|ing)|grop(?:e|es|ed|ing)|molest\w*|fondl\w*) me\b|"
        r"\b(?:forces?|forced|forcing) (?:himself|herself|themselves) on me\b|\b(?:drugged|spiked) (?:me|my drink)\b|"
        r"\b(?:had|has|have|having) sex with me (?:while|when) i (?:was|am|'m) (?:asleep|sleeping|out of it|unconscious|passed out|drunk|too drunk|high|crying)\b",
        "abuse",
    ),
    RiskPattern(
        "abuse_control",
        rf"\b(?:he|she|(?:my|our) {_MODIFIER}{{0,2}}?(?:husband|wife|boyfriend|girlfriend|bf|gf|partner|fianc[eé]e?|ex)) {_ABUSE_GAP}?(?:(?:always|still|now|also) )?(?:controls?|takes?|took|has taken|keeps?|holds?|checks?|reads?|tracks?|monitors?|smashes|smashed) (?:all )?(?:of )?(?:my|the) (?:whole )?(?:money|wages?|salary|pay|benefits|pension|bank cards?|cards|phone|messages|texts|location|passport|documents|car keys)\b|"
        rf"\b(?:he|she|(?:my|our) {_MODIFIER}{{0,2}}?(?:husband|wife|boyfriend|girlfriend|bf|gf|partner|fianc[eé]e?)) {_ABUSE_GAP}?controls? (?:everything|all the money|all my money|the money|my money|what i eat|who i see)\b|"
        rf"\b(?:{_ABUSER}|they)(?:'s|'ve)? {_ABUSE_GAP}?(?:has |have )?(?:took|taken|takes|take|hid|hidden|hides|keeps?|kept|burnt|burned) my passport\b|"
        r"\b(?:making|forcing|force|forced|make|makes|forces) me (?:to )?(?:marry|get married)\b|"
        r"\bnot allowed (?:to )?(?:leave the (?:house|flat)|go out|out of the (?:house|flat)) (?:without|unless|on my own|alone)\b|\bnot allowed (?:a|my own|to have a) (?:phone|bank card|bank account|money)\b|"
        r"\b(?:won't|doesn't|does not|will not|don't|wont) let me (?:eat|have (?:my own |any )?money|leave the (?:house|flat)|out of the (?:house|flat)|see (?:my )?(?:friends|family) or)\b",
        "abuse",
    ),
    RiskPattern(
        "abuse_neglect",
        rf"\b(?:{_ABUSER}|(?:the )?(?:carers?|nurses|staff)) (?:(?:at|in|from) [^.,;!?]{{0,40}}? )?{_ABUSE_GAP}?(?:(?:always|often|still|just|sometimes) )?(?:leaves?|leaving|left) (?:me|him|her|them|{_VICTIM_NAMED}) (?:in|lying in) (?:soiled|dirty|wet|soaked) (?:sheets|clothes|bed|nappies|pads)\b|"
        rf"\b{_ABUSER} {_ABUSE_GAP}?(?:doesn't|don't|won't|never|refuses? to) (?:feed|give (?:me|him|her|them) (?:food|water|(?:his|her|their|my) (?:meds|medication|medicine))) (?:me|{_VICTIM})\b",
        "abuse",
    ),
    RiskPattern(
        "abuse_locked_in",
        rf"\b{_ABUSER}(?:'s|'ve)? {_ABUSE_GAP}?(?:(?:always|still|often|sometimes|has|have|keeps?) )?(?:locks?|locking|locked|shuts?|shut) (?:me|us|{_VICTIM}) (?:up|in|inside|out)\b(?! of (?:my|the|his|her) (?:account|computer|laptop|phone|car|game))|"
        r"\b(?:nails?|nailed|screws?|screwed|locks?|locked) the (?:windows|doors?) (?:shut )?(?:and|so) (?:locks? me|i can't (?:get out|leave))\b|"
        r"\bi(?:'m| am) (?:locked|trapped|shut) in\b[^.!?]{0,40}\b(?:he|she|they) (?:took|has|'s got|locked|won't)\b",
        "abuse",
    ),
    RiskPattern(
        "harm_others_revenge_armed",  # reach bounded (400 characters) so a long text stays linear
        r"\bmake (?:them|him|her|everyone|those \w+) (?:all )?pay\b(?=.{0,400}\b(?:gun|rifle|pistol|knife|bomb|shoot|kill)\b)|\b(?:gun|rifle|pistol|knife|bomb)\b.{0,400}\bmake (?:them|him|her|everyone) (?:all )?pay\b",
        "harm_to_others",
        negatable=False,
    ),
    RiskPattern(
        "harm_others_violent_wish",
        rf"\bwant(?:s|ed)? {_PERSON} (?:dead|to die|gone for good)\b|\b(?:want|wanna|going|gonna|need|like) to (?:see|watch|make) {_PERSON} (?:bleed|suffer and die|die|dead|beg for (?:his|her|their) life)\b|"
        rf"\b(?:going to|gonna|will|'ll|want to|wanna) (?:beat|punch|hit|kick) {_PERSON} (?:until|till|to death|senseless|bloody|half to death|unconscious)\b",
        "harm_to_others",
        first_person=True,
    ),
    RiskPattern(
        "abuse_armed",
        rf"\b{_ABUSER}(?:'s| is| are|'re)? (?:outside|here|at the door|downstairs|coming|in the house|waiting)(?: \w+){{0,3}} with (?:a|his|her|their) (?:knife|gun|weapon|bat|rifle|pistol)\b|"
        rf"\b{_ABUSER} (?:has|'s got|is holding|is waving|pulled|grabbed|pointed) (?:a|his|her|their|the) (?:knife|gun|weapon|rifle|pistol)(?: at me| on me)?\b(?=[^.]*\b(?:me|scared|afraid|help|hiding|locked)\b)",
        "abuse",
        "imminent",
        negatable=True,
    ),
    RiskPattern(
        "abuse_expected",
        rf"\b{_ABUSER}(?:'s| is| are|'re)? (?:going to|gonna|will|'ll|is going to|are going to) (?:\w+ )?(?:hurt|beat|hit|rape|choke|strangle) me(?: again)?\b{_NOT_FIGURATIVE}|"
        r"\b(?:afraid|scared|terrified|too scared|too afraid) to go (?:back )?home\b",
        "abuse",
    ),
    RiskPattern(
        "abuse_unsafe",
        r"\b(?:i(?:'m| am)? )?(?:not safe|unsafe|in danger) (?:at home|here|in my (?:own )?(?:home|house)|with (?:him|her|them|my \w+)|around (?:him|her|them|my \w+))\b|"
        r"\bi(?:'m| am) being (?:abused|beaten|hurt|threatened|stalked|trafficked|blackmailed|sexually abused|groomed|raped|followed)\b|"
        rf"\b(?:{_ABUSER}|someone|somebody|a (?:man|guy|woman)) (?:[^.,;!?]{{0,50}}? (?:and|then) )?(?:is |are |has been |have been |keeps? |kept |always |still )*(?:stalking|following|threatening|blackmailing|grooming|harassing) me\b|"
        r"\b(?:forc(?:es|ing|ed)|makes|made) me (?:to )?(?:have sex|do sexual|touch (?:him|her)|send (?:nudes|pictures))\b|"
        r"\b(?:raped|sexually assaulted|molested|assaulted) me\b|\bi (?:was|got|have been|'ve been) (?:raped|sexually assaulted|molested|assaulted)\b|"
        r"\b(?:told|tell|telling|tells|keep telling|keeps telling) me to (?:kys|kill myself|die|go die|end it)\b",
        "abuse",
        first_person=False,
    ),
    # -------- low-level signals (never a crisis on their own) --------
    RiskPattern(
        "signal_keyword",
        r"\b(?:suicide|suicidal|self[- ]?harm|overdose|kill myself|want to die|lethal|noose|unalive|kms)\b",
        "suicide",
        "low",
        negatable=False,
        past_sensitive=False,
        fiction_sensitive=False,
    ),
    RiskPattern(
        "signal_third_party",
        r"\b(?:kill(?:s|ed|ing)?|hurt(?:s|ing)?|cut(?:s|ting)?|harm(?:s|ed|ing)?) (?:himself|herself|themselves|themself)\b|\b(?:he|she|they)(?:'s| is| are|'re) suicidal\b|\bcommitted suicide\b|\b(?:he|she|they|[a-z]+) (?:took|takes) (?:his|her|their) (?:own )?life\b",
        "suicide",
        "low",
        negatable=False,
        past_sensitive=False,
        fiction_sensitive=False,
    ),
    RiskPattern(
        "signal_hyperbole",
        r"\b(?:just )?(?:kill|shoot) me now\b|\b(?:i'd|i would) rather (?:die|be dead|kill myself) than\b|\bdead inside\b|\bi(?:'m| am) (?:a )?(?:worthless|useless|hopeless|a failure|nothing)\b",
        "suicide",
        "low",
        negatable=False,
        past_sensitive=False,
        fiction_sensitive=False,
    ),
    RiskPattern(
        "signal_violence",
        rf"\b(?:kill|murder|shoot|stab|hurt|beat up) {_PERSON}\b|\b{_ABUSER} (?:is |are |'s |'re )?(?:going to|gonna|will|'ll) kill me\b",
        "harm_to_others",
        "low",
        negatable=False,
        past_sensitive=False,
        fiction_sensitive=False,
    ),
)
"""The built-in rules, most severe first within a category."""


IDIOMS: tuple[str, ...] = (
    # "this exam is killing me", "my feet are killing me", "you're killing me"
    r"\b(?:is|are|was|were|'s|'re|been|be|keeps|kept) (?:\w+ )?(?:killing|murdering) me\b",
    r"\b(?:it|this|that|which|she|he|they) (?:\w+ )?kills me\b(?! (?:if|when))",
    # "I could kill for a pizza", "I'd kill for that job"
    r"\bkill(?:s|ed|ing)? (?:me )?for (?:a|an|some|the|that|this|one|it|him|her|your)\b(?! (?:hurting|touching|leaving|cheating))",
    r"\bkill(?:ing|ed|s)? (?:some |the )?time\b",
    r"\bkill(?:ing|ed)? it\b(?! (?:all|now|tonight|for good))",
    r"\bkill(?:ing|ed|s)? (?:the|my|his|her|your|that) (?:lights?|mood|vibe|buzz|engine|motor|music|bugs?|spiders?|process|app|joke|conversation|battery|germs|plants?|weeds|pain|headache|boss fight|game|deal)\b",
    r"\bkill(?:ing|ed)? (?:two birds|the competition|the interview|the exam|the test|the presentation)\b",
    r"\bkilling myself (?:at|with|over|for|trying|working|studying|to get|to make|to finish|on this)\b",
    r"\b(?:dying|dead|die) (?:to|for) (?:see|know|try|meet|go|hear|get|have|tell|read|watch|eat|find out|a)\b",
    r"\b(?:dying|die|died|dead|diying) (?:of|from|with) (?:laughter|laughing|embarrassment|boredom|curiosity|thirst|hunger|shame|cringe|cuteness|envy|jealousy)\b",
    r"\b(?:almost |nearly |literally )?died (?:laughing|of laughter)\b|\bdying laughing\b",
    r"\bdie on (?:this|that|the same) hill\b|\bto die for\b|\bdie hard\b|\bdiehard\b|\bdie-hard\b|\bold habits die\b|\bdo or die\b|\bnever say die\b",
    r"\bdead (?:tired|serious|wrong|right|set|end|ends|heat|weight|zone|silent|still|quiet|ringer|on|last|center|centre|battery|phone|giveaway)\b",
    r"\b(?:lol|lmao|haha|omg) (?:i'm |im )?dead\b|\bi'm dead (?:lol|lmao|haha|😂|🤣)",
    r"\bover my dead body\b|\bwouldn't be caught dead\b|\bdrop dead (?:gorgeous)?\b|\bdeath of me\b|\bthe end of me\b",
    r"\b(?:bored|scared|worried|frightened|tickled|sick|loved?|starving|freezing|stressed|beaten|done|talked|worked) to death\b",
    r"\b(?:career|political|social|financial|commercial|academic|professional) suicide\b",
    r"\bsuicide (?:squad|doors?|drills?|runs?|sprints?|mission|king|blonde|bomb\w*|vest|pact (?:movie|film))\b",
    r"\bbeat(?:ing|s)? myself up\b|\bkick(?:ing|ed)? myself\b|\bcould (?:just )?(?:kill|kick|strangle) myself (?:for|because|when)\b",
    r"\b(?:hurt|cut|burn|burned|burnt) myself (?:shaving|cooking|by accident|accidentally|on (?:a|the|some)|while|playing|at (?:the |work|practice|training)|lifting|running|falling|skiing|working out|in the kitchen|when i fell)\b",
    r"\b(?:mom|mum|mother|dad|father|parents|teacher|boss|coach|wife|husband|girlfriend|boyfriend|sister|brother|grandma|he|she|they) (?:is |are |'s |'re )?(?:going to|gonna|will|'ll|would|'d) (?:literally )?(?:kill|murder) me (?:if i (?:fail|don't|do not|forget|lose|break|miss|get|am late|'m late|tell|come home late|quit|spend)|when (?:she|he|they) (?:find|finds|see|sees|hear|hears)|for (?:this|that|being|forgetting|breaking|losing)|lol|haha)\b",
    r"\bgoing to die (?:of|from) (?:embarrassment|boredom|laughing)\b",
    r"\bkill (?:the|that|this) (?:idea|plan|project|bill|story|thread)\b",
    r"\b(?:shoot|shot) (?:some )?(?:hoops|pool|a video|a film|a movie|an email|a message|a text|the breeze|me a (?:text|message|email))\b",
    r"\b(?:hit|hits|hitting) (?:me )?(?:up|back)\b|\bit (?:just )?hit me\b|\breality hit me\b|\b(?:that|this|the news|it) (?:really )?hit me (?:hard)?\b",
    r"(?:^|(?<=[.!?,] )|(?<=[.!?,]))(?:well,? |honestly,? |lol )?beats me\b(?=\s*(?:[.,!?]|$|why|how|what|where|who|lol))",
)
"""Figures of speech masked out before matching (they never count, not even as a signal)."""


# -- context markers -----------------------------------------------------------------------------

NEGATORS = r"(?:\bnever|\bnot|\bno|\bnor|\bnothing|(?<!ca)(?<!could)n't|\bno longer)"
"""Negation words that cancel a negatable match when they sit directly before it (modulo fillers)."""

NEGATION_FILLERS = (
    "really", "ever", "actually", "seriously", "even", "going", "to", "want", "wanna", "gonna", "plan", "planning",
    "be", "thinking", "think", "of", "about", "consider", "considering", "try", "trying", "i", "i'd", "i'm", "would",
    "will", "have", "had", "any", "feel", "feeling", "like", "that", "so", "am", "do", "a", "the", "it", "intention",
    "intend", "plans", "thoughts", "desire", "wish", "urge", "urges", "longer", "way", "chance", "way,", "in", "hell",
    "at", "all", "ever,", "myself", "be", "been", "gotten", "get", "gonna", "actually", "honestly", "definitely",
    "absolutely", "certainly", "i'll", "i've", "is", "are", "was", "were", "it's", "he", "she", "they", "could", "should",
    "am,", "really,", "currently", "now", "right", "suicidal", "and", "or", "won't", "don't", "anything", "something",
    "stupid", "crazy", "dumb", "drastic", "rash",
)

DISTANT_PAST = (
    r"\b(?:years? ago|months ago|decades? ago|a long time ago|long ago|when i was (?:a |an |younger|little|young|small|in|at|\d+|[a-z]+teen|[a-z]+ty|a teen|a kid|a child)|"
    r"(?<!the way it )(?<!the way they )(?<!like it )(?<!as it )(?<!than it )used to|back (?:then|in|when)|as a (?:kid|child|teen(?:ager)?|student|little girl|little boy)|in (?:high school|middle school|grade school|college|my (?:teens|twenties|youth|thirties))|"
    r"at the time|(?:in|since|during|around) (?:19|20)\d\d|last year|growing up|in the past|my past|back home|once upon|before i (?:got help|started therapy|got better|met)|"
    r"haven't (?:done|felt|had) (?:that|it|this) (?:in|for|since)|(?:clean|free) (?:for|since) (?:\d+|a|two|three|several|many))\b"
)

PRESENT_AGAIN = (
    r"\b(?:again|lately|these days|recently|tonight|starting to|started to|relaps\w*|"
    r"(?:coming|came|come|comes|creeping|crept) back(?! (?:from|home|early|late|upstairs|downstairs|inside|to (?:the|my|our|his|her) (?:house|flat|room|car|office|school|uni|dorm|ward))\b)|"
    r"(?:still|now|today) (?:\w+ ){0,2}(?:want|wanna|think|thinking|feel|feeling|do|doing|have (?:the )?urges?|cut|cutting|hurt|hurting|struggle|struggling|plan|planning|happens?|happening|going on))\b"
)

PAST_INTENT = r"\b(?:wanted to|wanted|was going to|were going to|was gonna|thought about|could have|could've|would have|would've|almost|nearly|tried to)\b"

PAST_VERB = (
    r"(?:\b(?:i|i'd|i had|we)\b(?: \w+){0,3} |^)(?:tried|took|overdosed|swallowed|self[- ]?harmed|harmed|hurt|cut|burn(?:ed|t)|"
    r"starved|scratched|gave|wrote|said|thought|had|was|were|wanted|planned|attempted|jumped|stockpiled|started|stopped|spent|"
    r"used to|nearly|almost|went)\b"
)
"""The writer's own verb in the past tense before the match (in its clause): the story is told as over. Needed by
the two weaker past checks below, so a present plan beside a date ("at 11") is never read as the past."""

STORY_PAST = (
    r"\b(?:at (?:the )?(?:age (?:of )?)?(?:1[3-9]|[2-9]\d)(?! ?(?:am|pm|o'?clock|tonight|today|tomorrow|this|on|:))|aged? (?:1[3-9]|[2-9]\d)|"
    r"in (?:year|grade|form) \d+|(?:first|second|third|fourth|final|last|senior|junior|sophomore|freshman) year(?! (?:now|this))|"
    r"in (?:my|the) (?:early |mid |late )?(?:teens|twenties|thirties|forties|fifties|sixties|20s|30s|40s|50s|60s|70s|80s|90s|'\d0s)|"
    r"(?:a few|some|two|three|four|five|\d+) years back|years back|this time last year|there was a (?:time|winter|summer|year|spring|period|spell|point)|"
    r"back when|the old me|\d+ ?(?:year|yr)s? old me|(?:\d+|a|two|three|four|five|six|seven|eight|nine|ten|\w+teen|twenty) (?:years?|yrs) (?:later|on|behind me)|"
    r"(?:in|through|during) (?:most of )?my (?:teens|twenties|thirties|forties|childhood|degree|engineering|a.?levels|gcses|\w+ (?:exams?|boards?))|"
    r"(?:it'?s been|been) (?:\w+ ){0,2}(?:years?|months?|yrs) since|that was (?:in )?(?:19|20)\d\d|the (?:year|time|summer|winter|period) (?:when )?i|"
    r"(?:\d+|two|three|four|five|six|seven|eight|nine|ten|\w+teen|twenty|many) (?:years?|yrs) since i|"
    r"(?:during|in|through) (?:the )?(?:lockdowns?|pandemic|covid)|in (?:my )?\d+(?:st|nd|rd|th) (?:class|grade|standard|form))\b"
)
"""A time in the writer's life that is over ("at 15", "in year 9", "a few years back", "this time last year"): with
:data:`PAST_VERB`, the match's sentence tells a past story (the plain markers of :data:`DISTANT_PAST` need no verb)."""

RECOVERED = (
    r"\b(?:i'?m (?:\w+ ){0,4}(?:ok|okay|fine|well|safe|good|better|alright|happy|thriving)(?: now| these days)?\b|"
    r"(?:in a|in a much|in a really|in a way) (?:good|better|great|much better|safer) (?:place|space)|"
    r"(?:clean|free|dry|sober) (?:for )?(?:\d+|a|one|two|three|four|five|six|seven|eight|nine|ten|several|many) (?:years?|months?|yrs)|"
    r"(?:\d+|a|one|two|three|four|five|six|seven|eight|nine|ten|several|many) (?:years?|months?|yrs) (?:clean|free|sober|dry)|"
    r"haven'?t (?:\w+ ){0,4}(?:since|in (?:years|ages|a long time|over a year))|(?:got|get|getting|found|had) (?:proper |real |the |some )?(?:help|support|treatment|therapy)|"
    r"recover(?:ed|y)|that was (?:\w+ ){0,2}(?:years?|months?|decades?|yrs) ago|that was (?:in )?(?:19|20)\d\d|glad (?:i'?m|to be) (?:still )?(?:here|alive)|"
    r"now i (?:am|have|work|volunteer|run|help|teach|live|love|mentor)\b|i'?m \d+ now|(?:saved|changed) my life|back on track|"
    r"don'?t (?:have|get) (?:those|these|them|the|any) (?:thoughts|urges)|not for (?:over )?(?:a|\d+|two|three|four|five) (?:years?|months?)|"
    r"(?:feeling|doing) (?:ok|okay|fine|well|good|better|great) now|therapy (?:works|worked|helped))"
)
"""The writer says the crisis is over and they are safe now ("i'm well now", "clean 3 years", "that was 15 years
ago"): with a past verb and a time that is over anywhere in the message, a past-sensitive match is the story of it."""

_DEPARTURE = (
    r"\b(?:emigrat\w*|relocat\w*|moving (?:to|back|house|abroad|out|in|across)|we move|move (?:to|back to)|"
    r"(?:new|full[- ]time|first) job|job (?:in|at|starts)|starting (?:at|a|my|uni|school|college)|retir\w*|leaving do|send[- ]?off|"
    r"handed in my (?:notice|badge|laptop|keys)|maternity leave|gap year|no (?:wifi|signal|phones?|internet|reception)|off grid|"
    r"silent retreat|meditation retreat|switching to|new (?:number|sim|phone|account|company|role|house|flat|school)|"
    r"(?:fly|flying|flight) (?:to|out|home)|holiday|posting|posted to|deployment|on exchange|leavers|prom|shift pattern|camping)\b"
)
_OVERDOSE_OF_A_TREAT = (
    r"^(?!.*\b(?:pills?|tablets?|meds|medications?|paracetamol|tylenol|ibuprofen|aspirin|insulin|opioids?|oxy\w*|codeine|"
    r"morphine|heroin|fentanyl|xanax|sleeping|antidepressants?|sertraline|prescription|drugs?)\b).*"
    r"\boverdos\w* on (?:\w+ ){0,2}(?:coffee|caffeine|espresso|flat whites?|lattes?|tea|energy drinks?|red bull|monster|sugar|"
    r"sweets|candy|chocolate|easter eggs|cake|cheese|pizza|carbs|crisps|chips|biscuits|cookies|ice cream|junk food|food|"
    r"netflix|tv|telly|true crime|documentaries|youtube|tiktok|anime|reality tv|podcasts?|christmas|nostalgia|sunshine|"
    r"vitamin c|dopamine|serotonin|cuteness|memes|taylor swift|k-?pop)\b"
)
"""An overdose "on" coffee, sweets or television, in a sentence that names no medicine or drug."""
LOOKALIKES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "suicide_goodbye": ((
        r"^(?:my (?:last|final) (?:message|day|night|week)|(?:wrote|written|write|writing|left|finished) (?:a |my )?goodbye (?:note|letter)s?)",
        _DEPARTURE, "message"),),
    "suicide_giving_away": ((r"^(?:(?:saying|said|say) (?:my )?goodbyes? to|giv\w* away|gave away|gave my|giv\w* my)", _DEPARTURE, "message"),),
    "suicide_means_acquired": ((
        r"\brope$",
        r"\b(?:swing|ladder|treehouse|tree house|climbing|tow(?:ing)?|washing line|clothes ?line|tent|boat|hammock|tyre|tire|horse|tug of war|skipping)\b",
        "sentence"),),
    "suicide_method_seeking": ((
        r"^(?:lethal|fatal|deadly) (?:dose|amount)",
        r"\b(?:for|to|in) (?:a|my|the|our|his|her) (?:\w+ )?(?:dog|cat|puppy|kitten|pet|rabbit|horse|hamster|parrot|spaniel|labrador|terrier)s?\b",
        "sentence"),),
    "suicide_overdosed": ((
        r"overdos",
        _OVERDOSE_OF_A_TREAT,
        "sentence"),),
}
"""Safe look-alikes of a pattern, read in context: ``pattern id -> ((what the match says, what the context says,
"sentence" or "message"), ...)``. "my last day" beside a new job or a move, "said goodbye to everyone" beside
emigrating, a rope bought for a swing, a lethal dose asked about a dog, an overdose of coffee or television (never
with a medicine named in the sentence). Only the match that says the first part is
spared; any other match in the message still counts (so "my last day at work" beside "kill myself" escalates)."""

RECENT = (
    r"\b(?:last (?:night|week|weekend|month|friday|saturday|sunday|monday|tuesday|wednesday|thursday)|yesterday|this (?:morning|afternoon|evening|week|month)|"
    r"earlier today|today|just now|(?:an|one|two|few|couple of|\d+) (?:hours?|days?) ago|the other (?:day|night)|"
    r"every (?:single )?(?:night|day|morning|evening|week|weekend|time)|each (?:night|day|time)|most (?:nights|days|mornings)|"
    r"all the time|at the moment|currently|right now|nowadays|"
    r"(?:i'm|i am) (?:\w+ ){0,2}in (?:my )?(?:(?:year|grade|form) \d+|\d+(?:st|nd|rd|th) (?:class|grade|standard|form)|"
    r"(?:first|second|third|fourth|final|last|senior|junior|sophomore|freshman) year))\b"
)
"""A time that is not over ("last night", "yesterday", "two days ago", "every night", "i'm in year 9"): a match in its
sentence is never read as a past story, whatever else the message says."""

FICTION = (
    r"\b(?:novel|story|stories|fiction|fanfic|fan fiction|book|movie|film|tv show|show|series|episode|character|characters|protagonist|"
    r"villain|lyrics?|song|poem|poetry|screenplay|roleplay|role-play|role play|d&d|dnd|video game|in the game|in game|final boss|boss fight|boss battle|playthrough|speedrun|plot|chapter|"
    r"anime|manga|comic|sitcom|documentary|the play|a play|musical|opera|podcast|my oc|essay|thesis|hypothetical(?:ly)?)\b"
)

REALITY = (
    r"\b(?:for real|not (?:a |for a |just a )?(?:story|joke|fiction|hypothetical|game|roleplay)|not (?:really )?(?:joking|kidding|pretending)|"
    r"(?:the|my) friend is (?:me|actually me)|(?:it's|its|it is) (?:actually |really )?(?:me|about me)|i(?:'m| am) the friend|"
    r"(?:this is|it's|its) (?:real|really happening)|in real life|irl)\b"
)
"""Markers that a fiction, hypothetical or "for a friend" frame is about the writer after all."""

REPORTED_SPEECH = r"\b(?:says?|said|sings?|sang|wrote|writes|tweeted|posted|texted|line|quote|quoted|asks?|asked|yells?|yelled|screams?|screamed|told|tells|goes)\b"

THIRD_PARTY_SUBJECT = (
    r"\b(?:he|she|they|he's|she's|they're|they've|he'd|she'd|you|you're|you'd|your|we|we're|mom|mum|dad|friend|brother|sister|son|daughter|wife|"
    r"husband|boyfriend|girlfriend|partner|mother|father|someone|somebody|people|everyone|everybody|nobody|character|patient|client|"
    r"kid|child|student|man|woman|guy|girl|person|who|anyone|nobody's|everyone's)\b"
)
FIRST_PERSON_SUBJECT = r"\b(?:i|i'm|i've|i'd|i'll|me|myself|my)\b"

HYPERBOLE = r"(?:\blol\b|\blmao\b|\blmfao\b|\bhaha\w*|\bhehe\w*|\bjk\b|\bjust kidding\b|(?<!not )(?<!n't )(?<!not even )\bjoking\b|😂|🤣|😆|😅|🙄|\bxd\b)"

SPELLING = {
    # shorthand and contractions without apostrophes
    "im": "i'm", "ive": "i've", "ill": "ill", "dont": "don't", "cant": "can't", "wont": "won't", "wouldnt": "wouldn't",
    "couldnt": "couldn't", "shouldnt": "shouldn't", "didnt": "didn't", "isnt": "isn't", "wasnt": "wasn't", "doesnt": "doesn't",
    "arent": "aren't", "havent": "haven't", "hasnt": "hasn't", "werent": "weren't", "thats": "that's", "whats": "what's",
    "its": "its", "youre": "you're", "theyre": "they're", "hes": "he's", "shes": "she's", "theres": "there's", "itll": "it'll",
    "wanna": "want to", "wana": "want to", "gonna": "going to", "gona": "going to", "gotta": "got to", "tryna": "trying to",
    "finna": "going to", "imma": "i'm going to", "ima": "i'm going to", "i'ma": "i'm going to", "u": "you", "ur": "your",
    "ya": "you", "rn": "right now", "tn": "tonight", "2nite": "tonight", "tonite": "tonight", "2day": "today",
    "tmrw": "tomorrow", "tmr": "tomorrow", "b4": "before", "bc": "because", "cuz": "because", "coz": "because", "cos": "because",
    "pls": "please", "plz": "please", "dunno": "don't know", "idk": "i don't know", "abt": "about", "w/o": "without",
    "bcuz": "because", "wanted2": "wanted to", "want2": "want to", "n": "and", "thru": "through", "alr": "already",
    "evry1": "everyone", "every1": "everyone", "some1": "someone", "any1": "anyone", "no1": "no one", "luv": "love",
    "ded": "dead", "deded": "dead", "dyin": "dying", "killin": "killing", "cuttin": "cutting", "thinkin": "thinking",
    "goin": "going", "livin": "living", "nothin": "nothing", "somethin": "something", "feelin": "feeling",
    # misspellings of key words
    "kil": "kill", "kll": "kill", "kiil": "kill", "kilk": "kill", "kilm": "kill", "kils": "kills", "killl": "kill",
    "myslef": "myself", "mysefl": "myself", "mysel": "myself", "myselfe": "myself", "meself": "myself", "myseld": "myself",
    "mysef": "myself", "myelf": "myself", "mself": "myself", "msyelf": "myself", "mysself": "myself",
"dieing": "dying", "dyeing": "dying", "deth": "death", "dieded": "died",
    "sucide": "suicide", "suiside": "suicide", "suicde": "suicide", "suicid": "suicide", "sucidie": "suicide", "suiscide": "suicide",
    "suacide": "suicide", "sewerslide": "sewer slide", "sewer-slide": "sewer slide", "suicidial": "suicidal", "sucidal": "suicidal",
    "suisidal": "suicidal", "suicidel": "suicidal", "suicidle": "suicidal", "sucicidal": "suicidal", "suicudal": "suicidal",
    "overdoes": "overdoes", "overdoze": "overdose", "ovrdose": "overdose", "unalived": "unalived",
    "selfharm": "self-harm", "selfharming": "self-harming", "self_harm": "self-harm",
    "alive.": "alive", "anymore.": "anymore", "anymroe": "anymore", "anymor": "anymore", "nomore": "no more",
    "pils": "pills", "pilss": "pills", "tabs": "tablets",
}
"""Token replacements applied during normalisation (shorthand, contractions, misspellings)."""

FUZZY_TARGETS = ("suicide", "suicidal", "myself", "overdose")
"""Key words matched with a small edit distance (1 for ≤ 6 letters, else 2)."""

LEET = str.maketrans({"1": "i", "!": "i", "3": "e", "0": "o", "4": "a", "@": "a", "5": "s", "$": "s", "7": "t", "|": "l"})
"""Leetspeak repair, applied only to tokens mixing letters with these characters."""

IMMINENCE = (
    r"\b(?:tonight|right now|today|this (?:morning|evening|afternoon|weekend)|in an hour|in (?:a few|\d+|two|ten|five) (?:minutes|hours)|"
    r"after (?:everyone|they|you|my \w+) (?:leaves?|goes?|go|sleeps?|falls? asleep)|when (?:everyone|they) (?:are|is) asleep)\b|"
    r"\b(?:have|got|bought|holding|saved(?: up)?|stockpil\w*|collected|ready|counted|lined up|sharpened|loaded) (?:\w+ ){0,3}(?:pills|rope|noose|gun|razor|blades?|knife|tablets|meds|poison|bullets|pistol|rifle)\b|"
    r"\b(?:standing|sitting) on (?:the|a) (?:bridge|ledge|roof|edge)\b|\bi have a plan\b|\bmy plan is\b|\b(?:planned|plan) (?:out )?(?:how|when|where|it|everything)\b|\bi know (?:how|when|where) i(?:'m| am| will|'ll)\b|"
    r"\b(?:wrote|written|left) (?:a|my) (?:suicide )?(?:note|letter)\b"
)
"""Means, plan or time: together with a current suicide/self-harm/violence finding they make it imminent."""


NOT_SERIOUS = (
    r"\((?:\s*)(?:jk|j/k|just kidding|kidding|joking|not literally|i'm fine|im fine|i'm not|obviously not|not really)\b[^)]*\)|"
    r"\bnot literally\b|\bjk\b|\bjust kidding\b|\b(?:i'm|i am) (?:only |just )?(?:joking|kidding)\b"
)
"""The writer says, right after a match, that it was not meant: "kms (jk it's fine)", "i'll hang myself with the
cable (not literally)". Read only after the match, never beside a plan or means, and never when the message says it
is real ("not joking", "for real")."""

NOT_SERIOUS_UNDONE = r"\b(?:not jk|not kidding|unless|or am i|kind of|kinda|sort of|half|partly|only half|not even|not really joking|not joking)\b"
"""What takes a "jk" back: "jk... unless", "half joking"."""
