"""Phrase banks for history.py: what the team's well-formed past requests say, per type and language.

Written apart from freeform.jsonl on purpose (history.py --overlap checks that no run of six words
is shared): the evaluation measures whether the model generalises from this mail to that one.
Slots: {p} a product or service of the client, {topic} a subject it writes about, {event} one of
its occasions, {month} a month, {n} a digit, {day} an English day of the month ("12th").
"""

from __future__ import annotations

# (subject description, the same job as the body names it)
JOBS = {
    "en": {
        "Content": [
            ("Blog article about {topic}", "an article for our blog about {topic}"),
            ("{month} newsletter", "the {month} newsletter"),
            ("Product texts for {p}", "product texts for {p}"),
            ("Press release - {event}", "a press release about {event}"),
            ("Copy for the careers page", "fresh copy for the careers page"),
            ("Social posts for {month}", "a batch of social posts for {month}"),
            ("Customer story on {p}", "a customer story featuring {p}"),
            ("Welcome email series", "a welcome email series for new subscribers"),
            ("Guide: {topic}", "a how-to guide on {topic}"),
            ("Invitation wording for {event}", "the invitation text for {event}"),
            ("Long-read on {topic}", "a long-read piece on {topic}"),
            ("Rewrite of the services page", "a rewrite of our services page"),
            ("Voice-over script for {p}", "a short voice-over script about {p}"),
            ("Proofread and polish annual letter", "proofreading and polishing of the annual letter"),
            ("Headlines and meta descriptions", "headlines and meta descriptions for the top landing pages"),
            ("Interview write-up for {event}", "a write-up of the interview we did around {event}"),
        ],
        "Design": [
            ("Banner set for {event}", "a set of display banners for {event}"),
            ("Poster for {event}", "a poster announcing {event}"),
            ("Illustrations for {p}", "some illustrations to go with {p}"),
            ("Presentation template", "a new presentation template"),
            ("Packaging artwork - {p}", "packaging artwork for {p}"),
            ("Social graphics for {month}", "social media graphics for {month}"),
            ("Leaflet layout", "the layout of a two-page leaflet"),
            ("Logo lockup for {event}", "a logo lockup for {event}"),
            ("Photo retouching - {p}", "retouching of the new photos of {p}"),
            ("Signage for the reception", "new signage for our reception area"),
            ("Email template design", "a fresh design for our email template"),
            ("Icons for the pricing table", "a small icon set for the pricing table"),
            ("Mood board for {event}", "a mood board and visual direction for {event}"),
            ("Print ad - {p}", "a print advert for {p}"),
            ("Stationery update", "updated letterhead and compliment slips"),
            ("Chart styling for the board deck", "styled charts for the board deck"),
        ],
        "Technical": [
            ("Checkout error on mobile", "an error in the checkout on mobile phones"),
            ("Broken links after the menu change", "links that broke when the menu changed"),
            ("Add event tracking for {p}", "event tracking for the {p} pages"),
            ("Integrate reviews widget", "integration of a reviews widget on product pages"),
            ("Page speed on the blog", "the slow loading of the blog"),
            ("Set up staging for the new theme", "a staging environment for the new theme"),
            ("Search results wrong for {p}", "the site search showing wrong results for {p}"),
            ("Plugin updates", "the pending plugin and core updates"),
            ("Form submissions missing", "form submissions that never reach us"),
            ("Sitemap and robots.txt", "our sitemap and robots.txt, which look wrong"),
            ("Newsletter signup to CRM sync", "syncing newsletter sign-ups into the CRM"),
            ("Image upload limit", "the upload limit on the media library"),
            ("Login loop on the partner area", "a login loop in the partner area"),
            ("Map embed on the locations page", "the map embed on the locations page"),
            ("Payment provider webhook", "the payment provider's webhook, which fails"),
            ("Backups and uptime monitoring", "backups and uptime monitoring for the site"),
        ],
        "Strategy": [
            ("Advice on {topic}", "some advice on {topic}"),
            ("Planning session for {event}", "a planning session ahead of {event}"),
            ("Channel mix for next year", "our channel mix for next year"),
            ("Audience research for {p}", "who we should be targeting with {p}"),
            ("Brand positioning review", "a review of our brand positioning"),
            ("KPIs for the marketing team", "which KPIs the marketing team should report on"),
            ("Go-to-market for {p}", "a go-to-market plan for {p}"),
            ("Consultation: agency retainer scope", "how to shape next year's retainer"),
            ("Competitor review", "a look at what our competitors are doing"),
            ("Budget split {month}", "how to split the budget from {month} on"),
            ("Messaging framework", "a messaging framework for the sales team"),
            ("Workshop on {topic}", "a workshop on {topic}"),
        ],
        "Revision": [
            ("Changes to the {month} newsletter", "a few changes to the {month} newsletter"),
            ("Edits to the {p} texts", "some edits to the {p} texts you sent"),
            ("Tweaks to the {event} poster", "tweaks to the {event} poster"),
            ("Amendments to the presentation template", "amendments to the presentation template"),
            ("Feedback on the banner set", "our feedback on the banner set"),
            ("Corrections - product texts", "corrections to the product texts"),
            ("Round two on the leaflet", "a second round on the leaflet"),
            ("Fixes to the new contact page", "some fixes to the contact page you built"),
            ("Update the customer story", "an update to the customer story"),
            ("Colour changes on the packaging", "colour changes on the packaging artwork"),
            ("Adjustments to the tracking setup", "adjustments to the tracking you set up"),
            ("Changes to the welcome emails", "changes to the welcome emails"),
        ],
        "Urgent": [
            ("Shop offline", "our shop, which is offline right now"),
            ("Payments failing", "payments that are failing for every customer"),
            ("Wrong prices live", "wrong prices that went live this morning"),
        ],
    },
    "de": {
        "Content": [
            ("Blogbeitrag über {topic}", "einen Blogbeitrag über {topic}"),
            ("Newsletter {month}", "den Newsletter für {month}"),
            ("Produkttexte für {p}", "Produkttexte für {p}"),
            ("Pressetext zu {event}", "einen Pressetext über {event}"),
            ("Texte Karriereseite", "neue Texte für die Karriereseite"),
            ("Social-Media-Texte {month}", "Texte für die Social-Media-Beiträge im {month}"),
            ("Anwenderbericht über {p}", "einen Anwenderbericht über {p}"),
            ("Begrüßungsmails", "eine Reihe von Begrüßungsmails für neue Abonnenten"),
            ("Ratgeber: {topic}", "einen Ratgeber-Artikel über {topic}"),
            ("Einladungstext für {event}", "den Einladungstext für {event}"),
            ("Fachartikel über {topic}", "einen Fachartikel über {topic}"),
            ("Leistungsseite neu texten", "neue Texte für unsere Leistungsseite"),
            ("Sprechertext für {p}", "einen kurzen Sprechertext über {p}"),
            ("Lektorat Jahresbrief", "ein Lektorat für den Jahresbrief"),
            ("Überschriften und Meta-Texte", "Überschriften und Meta-Beschreibungen für die wichtigsten Seiten"),
            ("Mitarbeiterporträt", "ein Mitarbeiterporträt für die Website"),
        ],
        "Design": [
            ("Bannerset für {event}", "ein Bannerset für {event}"),
            ("Plakat für {event}", "ein Plakat für {event}"),
            ("Illustrationen für {p}", "ein paar Illustrationen für {p}"),
            ("Präsentationsvorlage", "eine neue Präsentationsvorlage"),
            ("Verpackung für {p}", "die Verpackungsgestaltung für {p}"),
            ("Grafiken für Social Media {month}", "Grafiken für Social Media im {month}"),
            ("Faltblatt gestalten", "die Gestaltung eines Faltblatts"),
            ("Logo-Variante für {event}", "eine Logo-Variante für {event}"),
            ("Bildbearbeitung {p}", "die Bildbearbeitung der neuen Fotos für {p}"),
            ("Beschilderung Empfang", "eine neue Beschilderung für den Empfang"),
            ("Mailing-Vorlage gestalten", "ein neues Design für unsere Mailing-Vorlage"),
            ("Icons für die Preisübersicht", "ein kleines Icon-Set für die Preisübersicht"),
            ("Moodboard für {event}", "ein Moodboard und eine Bildsprache für {event}"),
            ("Printanzeige für {p}", "eine Printanzeige für {p}"),
            ("Geschäftsausstattung", "neues Briefpapier und Visitenkarten-Vorlagen"),
            ("Diagramme für die Vorstandspräsentation", "gestaltete Diagramme für die Vorstandspräsentation"),
        ],
        "Technical": [
            ("Fehler im Bestellprozess mobil", "einen Fehler im Bestellprozess auf dem Handy"),
            ("Defekte Links nach Menüumbau", "Links, die seit dem Umbau des Menüs ins Leere führen"),
            ("Tracking für {p} einrichten", "Tracking für die Seiten über {p}"),
            ("Bewertungs-Widget einbinden", "die Einbindung eines Bewertungs-Widgets"),
            ("Ladezeit Blog", "die langsame Ladezeit des Blogs"),
            ("Testumgebung für neues Theme", "eine Testumgebung für das neue Theme"),
            ("Suche findet {p} nicht", "die Seitensuche, die {p} nicht findet"),
            ("Plugin-Updates", "die ausstehenden Updates von Plugins und System"),
            ("Formularanfragen kommen nicht an", "Formularanfragen, die nicht bei uns ankommen"),
            ("Sitemap und robots.txt", "Sitemap und robots.txt, die fehlerhaft wirken"),
            ("Newsletter-Anmeldungen ins CRM", "die Übertragung der Newsletter-Anmeldungen ins CRM"),
            ("Upload-Grenze Mediathek", "die Upload-Grenze in der Mediathek"),
            ("Anmeldeschleife Partnerbereich", "eine Anmeldeschleife im Partnerbereich"),
            ("Karte auf der Standortseite", "die eingebettete Karte auf der Standortseite"),
            ("Webhook Zahlungsanbieter", "den Webhook des Zahlungsanbieters, der fehlschlägt"),
            ("Backups und Monitoring", "Backups und Verfügbarkeitsüberwachung der Website"),
        ],
        "Strategy": [
            ("Beratung zu {topic}", "eine Beratung zu {topic}"),
            ("Planungstermin für {event}", "einen Planungstermin vor {event}"),
            ("Kanalmix nächstes Jahr", "unseren Kanalmix für das nächste Jahr"),
            ("Zielgruppenanalyse für {p}", "die Frage, wen wir mit {p} ansprechen sollten"),
            ("Überprüfung Markenpositionierung", "eine Überprüfung unserer Markenpositionierung"),
            ("Kennzahlen fürs Marketing", "die Kennzahlen, über die das Marketing berichten sollte"),
            ("Markteinführung {p}", "einen Plan für die Markteinführung von {p}"),
            ("Beratung Betreuungsumfang", "den Umfang der Betreuung im nächsten Jahr"),
            ("Wettbewerbsanalyse", "einen Blick darauf, was unsere Wettbewerber machen"),
            ("Budgetaufteilung ab {month}", "die Budgetaufteilung ab {month}"),
            ("Argumentationsleitfaden Vertrieb", "einen Argumentationsleitfaden für den Vertrieb"),
            ("Workshop zu {topic}", "einen Workshop zu {topic}"),
        ],
        "Revision": [
            ("Änderungen am Newsletter {month}", "ein paar Änderungen am Newsletter für {month}"),
            ("Korrekturen Produkttexte {p}", "Korrekturen an den Produkttexten für {p}"),
            ("Anpassungen am Plakat für {event}", "Anpassungen am Plakat für {event}"),
            ("Änderungen Präsentationsvorlage", "Änderungen an der Präsentationsvorlage"),
            ("Rückmeldung zum Bannerset", "unsere Rückmeldung zum Bannerset"),
            ("Korrekturschleife Faltblatt", "eine zweite Korrekturschleife für das Faltblatt"),
            ("Nachbesserung Kontaktseite", "Nachbesserungen an der Kontaktseite, die ihr gebaut habt"),
            ("Anwenderbericht aktualisieren", "eine Aktualisierung des Anwenderberichts"),
            ("Farbkorrektur Verpackung", "Farbkorrekturen an der Verpackung"),
            ("Anpassung Tracking", "Anpassungen am eingerichteten Tracking"),
            ("Änderungen an den Begrüßungsmails", "Änderungen an den Begrüßungsmails"),
            ("Feedback zur Logo-Variante", "unser Feedback zur Logo-Variante"),
        ],
        "Urgent": [
            ("Shop nicht erreichbar", "unseren Shop, der gerade nicht erreichbar ist"),
            ("Zahlungen schlagen fehl", "Zahlungen, die bei allen Kunden fehlschlagen"),
            ("Falsche Preise online", "falsche Preise, die seit heute früh online sind"),
        ],
    },
}

ASKS = {
    "en": ["Could you take care of {job}?", "We'd like {job}, please.", "Please could the team pick up {job}.",
           "I'm writing about {job}.", "Can we get {job} on your list?", "This one is {job}.",
           "Would you be able to handle {job} for us?", "Next on our side: {job}.",
           "We need help with {job}.", "Adding {job} to the pile, sorry!"],
    "de": ["Könntet ihr euch um {job} kümmern?", "Wir bräuchten {job}.", "Bitte übernehmt {job}.",
           "Es geht um {job}.", "Könnt ihr {job} einplanen?", "Diesmal geht es um {job}.",
           "Wäre es möglich, dass ihr {job} übernehmt?", "Als Nächstes steht {job} an.",
           "Wir brauchen Unterstützung bei {job}.", "Noch ein Punkt von uns: {job}."],
}

DETAILS = {
    "en": {
        "Content": ["Roughly {n}00 words would be right.", "Tone: warm and plain, no jargon.",
                    "Our notes are in the shared folder.", "It should mention {p} early on.",
                    "Please suggest two or three headline options.", "Readers are mostly existing customers.",
                    "We'll handle the images, just the words please.", "A first draft by the {day} would be ideal.",
                    "Feel free to interview someone from our team for quotes.", "SEO keywords are listed in the brief."],
        "Design": ["Brand colours and fonts as usual.", "We need print-ready PDFs plus web versions.",
                   "Sizes are in the spec sheet attached.", "Something a bit bolder than last time would be nice.",
                   "Photos are in the shared drive.", "Please send two directions to choose from.",
                   "The printer wants files by the {day}.", "It has to work on a dark background too.",
                   "Keep the layout airy, not too much text.", "Source files would be helpful this time."],
        "Technical": ["It started after the last release.", "Screenshots and the browser console log are attached.",
                      "It happens in Chrome and Safari.", "Please test on staging before it goes live.",
                      "Customers have mentioned it {n} times this week.", "The API credentials are in the vault.",
                      "Nothing changed on our side as far as we know.", "A quick estimate first would help.",
                      "Ideally done before the weekend traffic.", "Logs from the server are in the ticket export."],
        "Strategy": ["An hour's call would be a good start.", "We can share the analytics beforehand.",
                     "Management wants a recommendation, not just options.", "Happy to come to your office.",
                     "The numbers from last year are attached.", "Ideally before we sign off the budget.",
                     "Please bring an outside perspective, we're too close to it.",
                     "A short deck afterwards would help us sell it internally.",
                     "We're open to being told we're wrong.", "Two or three dates in the next fortnight, please."],
        "Revision": ["The marked-up PDF is attached.", "Otherwise it's approved, thank you!",
                     "Only small things, should be quick.", "Legal asked for these changes.",
                     "Please send the updated version when ready.", "Everything else stays as delivered.",
                     "The date in the second paragraph is wrong too.", "Our director asked for a calmer colour.",
                     "Comments are inline in the shared doc.", "After this round we should be done."],
        "Urgent": ["Customers are complaining right now.", "Please call me as soon as you see this.",
                   "Every minute costs us orders."],
    },
    "de": {
        "Content": ["Etwa {n}00 Wörter wären passend.", "Ton: freundlich und klar, ohne Fachchinesisch.",
                    "Unsere Notizen liegen im gemeinsamen Ordner.", "Bitte {p} gleich am Anfang erwähnen.",
                    "Gern zwei, drei Vorschläge für die Überschrift.", "Die Leser sind vor allem Bestandskunden.",
                    "Bilder haben wir, es geht nur um den Text.", "Ein erster Entwurf bis zum {n}. wäre ideal.",
                    "Für Zitate könnt ihr gern jemanden aus dem Team befragen.", "Die Suchbegriffe stehen im Briefing."],
        "Design": ["Hausfarben und Schriften wie immer.", "Wir brauchen druckfähige PDFs und Webversionen.",
                   "Die Maße stehen im angehängten Datenblatt.", "Gern etwas mutiger als beim letzten Mal.",
                   "Fotos liegen im gemeinsamen Laufwerk.", "Bitte zwei Richtungen zur Auswahl.",
                   "Die Druckerei braucht die Daten bis zum {n}.", "Es muss auch auf dunklem Hintergrund funktionieren.",
                   "Bitte luftig, nicht zu viel Text.", "Diesmal hätten wir gern auch die offenen Dateien."],
        "Technical": ["Das fing nach dem letzten Update an.", "Screenshots und die Browser-Konsole hängen an.",
                      "Tritt in Chrome und Safari auf.", "Bitte vorher auf der Testumgebung prüfen.",
                      "Kunden haben es diese Woche {n}-mal gemeldet.", "Die Zugangsdaten liegen im Passwortsafe.",
                      "Bei uns wurde unseres Wissens nichts geändert.", "Eine kurze Aufwandsschätzung vorab wäre gut.",
                      "Am besten vor dem Wochenende erledigt.", "Die Server-Logs sind im Export dabei."],
        "Strategy": ["Ein einstündiger Termin wäre ein guter Anfang.", "Die Auswertungen schicken wir vorab.",
                     "Die Geschäftsführung möchte eine Empfehlung, nicht nur Optionen.", "Wir kommen gern zu euch.",
                     "Die Zahlen vom Vorjahr hängen an.", "Am besten bevor das Budget freigegeben wird.",
                     "Uns fehlt der Blick von außen.", "Eine kurze Präsentation danach würde uns intern helfen.",
                     "Wir lassen uns gern eines Besseren belehren.", "Bitte zwei, drei Terminvorschläge."],
        "Revision": ["Das PDF mit Anmerkungen hängt an.", "Ansonsten ist alles freigegeben, danke!",
                     "Nur Kleinigkeiten, sollte schnell gehen.", "Die Rechtsabteilung hat um diese Änderungen gebeten.",
                     "Bitte schickt uns dann die aktualisierte Fassung.", "Alles andere bleibt wie geliefert.",
                     "Auch das Datum im zweiten Absatz stimmt nicht.", "Unser Chef wünscht sich eine ruhigere Farbe.",
                     "Die Kommentare stehen direkt im Dokument.", "Nach dieser Runde sollten wir fertig sein."],
        "Urgent": ["Kunden beschweren sich gerade.", "Bitte ruft mich sofort an.", "Jede Minute kostet uns Bestellungen."],
    },
}

GREETINGS = {
    "en": ["Hi {staff},", "Hello {staff},", "Hi {staff} -", "Dear {staff},", "Hi team,", "Hello all,", "Hi there,",
           "Morning,", "Hi,", ""],
    "de": ["Hallo {staff},", "Moin {staff},", "Hi {staff},", "Guten Tag {staff},", "Hallo zusammen,",
           "Liebes Team,", "Guten Morgen,", "Hallo,", ""],
}

CLOSINGS = {
    "en": ["Thanks!", "Many thanks,", "Cheers,", "Best,", "Thank you,", "Regards,", "Speak soon,", ""],
    "de": ["Danke!", "Vielen Dank,", "Viele Grüße,", "Beste Grüße,", "Gruß,", "Danke und Gruß,", "LG,", ""],
}

# Aliases a client sometimes types instead of the type's name (rules/10-types.toml).
TYPE_WORDS = {
    "Content": ["Content", "Content", "Content", "Copy", "Blog", "Writing"],
    "Design": ["Design", "Design", "Design", "Graphics", "Creative"],
    "Technical": ["Technical", "Technical", "Tech", "Dev", "Web", "Bug"],
    "Strategy": ["Strategy", "Strategy", "Consultation", "Planning", "Advice"],
    "Revision": ["Revision", "Revision", "Changes", "Edits", "Feedback"],
    "Urgent": ["Urgent", "ASAP"],
}

MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober"],
}

# Sentences that say nothing about the kind of work: real requests carry them, and a model must
# learn to look past them.
CONTEXT = {
    "en": ["Following up on our call on {weekday}.", "Hope you had a good weekend!", "Budget for this is approved.",
           "Sorry for the short notice on this one.", "It ties in with {event}, so timing matters a bit.",
           "Not urgent, but before {month} would be good.", "I've copied in my manager so she's in the loop.",
           "Same purchase order as last time.", "Quick one from me today.", "We talked about this briefly at {event}.",
           "Our new colleague {colleague} will be the contact for this going forward.",
           "Let me know if anything is unclear.", "Happy to jump on a call if easier.",
           "The board meets on the {day}, so that's our real deadline.", "This came up in our Monday meeting."],
    "de": ["Wie am {weekday} telefonisch besprochen.", "Ich hoffe, ihr hattet ein schönes Wochenende!",
           "Das Budget dafür ist freigegeben.", "Sorry für die kurzfristige Anfrage.",
           "Es geht dabei auch um {event}, daher ist der Zeitpunkt wichtig.",
           "Nicht dringend, aber vor {month} wäre schön.", "Meine Chefin ist in Kopie.",
           "Gleiche Bestellnummer wie beim letzten Mal.", "Heute nur eine kurze Sache von mir.",
           "Wir hatten das schon kurz angesprochen, als es um {event} ging.",
           "Unser neuer Kollege {colleague} ist ab jetzt Ansprechpartner dafür.",
           "Meldet euch, wenn etwas unklar ist.", "Gern auch kurz telefonisch.",
           "Die Geschäftsführung tagt am {n}., das ist die eigentliche Frist.",
           "Das kam in unserer Montagsrunde auf."],
}

# An earlier message from us, quoted below the new request (about any kind of work).
QUOTES = {
    "en": ["On {weekday}, {staff} wrote:\n> Hi {first}, \"{title}\" is done and in the shared folder.\n> Let us "
           "know what you think.", "-----Original Message-----\nFrom: {staff} <{staff_lower}@agency.test>\nSent: {weekday}\nSubject: {title}\n\n"
           "Thanks, we'll start on this tomorrow."],
    "de": ["Am {weekday} schrieb {staff}:\n> Hallo {first}, „{title}“ ist fertig und liegt im Ordner.\n> Sag "
           "gern Bescheid, wie es dir gefällt.", "-----Ursprüngliche Nachricht-----\nVon: {staff} <{staff_lower}@agency.test>\n"
           "Gesendet: {weekday}\n"
           "Betreff: {title}\n\nDanke, wir starten morgen damit."],
}

WEEKDAYS = {"en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
            "de": ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag"]}
COLLEAGUES = ["Nina", "Paul", "Jonas", "Chloé", "Aisha", "Mateo"]
