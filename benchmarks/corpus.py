"""Natural-ish chat text; the generator picks its whitespace-separated tokens at random.

Picking tokens (punctuation attached) from running text keeps English word frequencies, so
the generated messages compress about as well as real chat logs, not like random bytes.
"""

CHAT_TEXT = """
Hi, can you help me figure out why my deployment keeps failing? The logs say the container
exits with code 137 right after the health check starts. I think it might be memory, but the
limit is already 512 MB and the service barely uses half of that when I run it locally.
Exit code 137 usually means the process was killed by the kernel, most often by the out of
memory killer. Locally you may not see the same peak because the data set is smaller. Try
raising the limit to 1 GB for a single deploy and watch the memory graph during startup. If
the peak happens while the cache warms up, you can load it lazily instead of all at once.
That worked, thanks! Now the next question: how do I make the nightly job retry only when the
failure is transient, like a timeout, and not when the configuration is wrong?
Good question. Split errors into two groups. Configuration errors should fail fast with a
clear message, because retrying will never fix them. Network timeouts, throttling and
connection resets are worth two or three retries with exponential backoff and some jitter.
Most schedulers let you mark a failure as retryable, so raise a different exception type.
Could you write me a short summary of the meeting notes I pasted above? Keep it under five
bullet points and mention the owners of each action item.
Here is a summary of the meeting. The team agreed to move the release to next Thursday so
that the migration can be tested on a copy of production first. Maria owns the test plan
and will share it by Monday. Tom will update the runbook and add the rollback steps. The
support team needs a short note for customers about the maintenance window. Everyone should
review the open pull requests before Wednesday afternoon.
What is a good recipe for dinner tonight? I have chicken, rice, a few tomatoes, garlic, an
onion and some spinach. Nothing too complicated please, I only have about thirty minutes.
You can make a quick one pan chicken and rice. Season the chicken with salt, pepper and a
little paprika, then brown it in a hot pan for five minutes on each side and set it aside.
Soften the chopped onion and garlic in the same pan, add the rice and stir for a minute,
then add the diced tomatoes and two cups of water or stock. Put the chicken back on top,
cover and simmer for about twenty minutes. Stir in the spinach at the end until it wilts.
I am planning a trip to Portugal in October. Which cities would you suggest for a week, and
is it better to rent a car or use trains between them?
For one week, Lisbon and Porto are a great pair, with a day trip to Sintra from Lisbon and
maybe a day in the Douro valley from Porto. The train between the two cities is fast and
comfortable, so you do not need a car for that part. A car is useful only if you want to
explore the Algarve coast or small villages where buses are rare. October is usually warm
during the day, but bring a light jacket and an umbrella just in case it rains.
Explain the difference between a process and a thread like I am new to programming.
A process is a running program with its own memory, files and resources. The operating
system keeps processes separate, so one crashing usually does not affect another. A thread
is a path of execution inside a process. Threads of the same process share memory, which
makes it easy and fast for them to work on the same data, but it also means they must be
careful not to change the same value at the same time. That is why we use locks and queues.
Why is my SQL query so slow? It joins orders and customers and filters on the created date,
and it takes almost ten seconds on a table with a few million rows.
Run the query with explain analyze and look for a sequential scan on the orders table. If
the filter on the created date cannot use an index, the database reads every row. An index
on the created date, or a composite index on customer and created date, usually fixes it.
Also check that the statistics are fresh, because a bad row estimate can pick the wrong
join strategy. After adding the index, run analyze and compare the plans again.
Can you rewrite this email so it sounds more polite but still firm? I need the vendor to
fix the invoice before the end of the month or we cannot pay it.
Of course. Here is a version you could send: Thank you for the invoice you sent last week.
Unfortunately we found a few items that do not match our order, and we are unable to
process the payment until they are corrected. Could you please send an updated invoice by
the end of the month? We appreciate your help and look forward to resolving this quickly.
My tests pass on my laptop but fail in the pipeline with a timezone error. What could be
different between the two environments?
The pipeline runners usually use UTC, while your laptop uses your local timezone. If a test
builds a date from the current time without a timezone, the result changes with the
environment. Make every timestamp timezone aware, set the timezone explicitly in the test
setup, or freeze the clock with a fixture. Comparing dates as strings is another common trap.
How much water should I drink when I run in hot weather? I usually run for about an hour.
A common guideline is to drink a glass of water an hour or two before you start, and then
small amounts every fifteen to twenty minutes while running in the heat. For runs longer than
an hour, a drink with some salt and sugar helps replace what you lose in sweat. Listen to your
body, and if you feel dizzy or stop sweating, slow down, find shade and drink something cool.
Please translate the following sentence into Spanish and French: the meeting has been moved
to tomorrow morning because the room is not available today.
In Spanish: la reunión se ha trasladado a mañana por la mañana porque la sala no está
disponible hoy. In French: la réunion a été déplacée à demain matin parce que la salle
n'est pas disponible aujourd'hui.
What are the pros and cons of storing user settings as JSON in a single column?
The main advantage is flexibility: you can add new settings without a migration, and the
application reads them in one query. The downsides are weaker validation, harder reporting
and the risk of slowly collecting keys that nobody uses anymore. A middle ground is to keep
important, frequently queried settings in real columns and put the rest in a JSON column
with a documented schema and a default for every key.
Thanks, this is really helpful. One more thing, can you give me an example of a backup
policy for a small company database that changes every day?
A simple policy: take a full backup every night, keep the last seven daily copies and the
last four weekly copies, and store at least one copy in a different region or account.
Test a restore at least once a month, because a backup you have never restored is only a
hope. Monitor the job, alert when a backup is late or much smaller than usual, and write
down who is on call to restore the data and how long it should take.
"""
