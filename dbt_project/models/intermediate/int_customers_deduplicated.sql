with

usable_rows as (

    select * from {{ ref('int_customers_validated') }}
    where quarantine_reason is null

),

ranked as (

    -- The export has no timestamp, so recency is read from the data: a customer's
    -- later record shows an older age (then more work experience); on a tie, the row
    -- further down the file wins, as exports append newer records.
    select
        *,
        row_number() over (
            partition by customer_id
            order by age desc nulls last, work_experience desc nulls last, source_row_number desc
        ) as recency_rank

    from usable_rows

),

merged as (

    -- one row per customer: each attribute from the most recent record that has it
    -- (arg_min skips NULLs), so a gap in the latest record is filled, not imputed
    select
        customer_id,
        arg_min(gender, recency_rank) as gender,
        arg_min(ever_married, recency_rank) as ever_married,
        arg_min(age, recency_rank) as age,
        arg_min(graduated, recency_rank) as graduated,
        arg_min(profession, recency_rank) as profession,
        arg_min(work_experience, recency_rank) as work_experience,
        arg_min(spending_score, recency_rank) as spending_score,
        arg_min(family_size, recency_rank) as family_size,
        arg_min(var_1, recency_rank) as var_1,
        arg_min(known_segment, recency_rank) as known_segment,
        arg_min(source_row_number, recency_rank) as source_row_number,
        count(*) as records_merged

    from ranked
    group by customer_id

)

select * from merged
