with

customers as (

    select * from {{ ref('customer_segments') }}

),

base as (

    select
        count(*) as customers,
        count_if(spending_score = 'High') as high_spenders

    from customers

),

per_segment as (

    select
        segment_id,
        count(*) as customers,
        avg(age) as mean_age,
        avg(is_married::integer) as share_married,
        avg(has_degree::integer) as share_graduated,
        avg((gender = 'Female')::integer) as share_female,
        avg(family_size) as mean_family_size,
        avg(work_experience) as mean_work_experience,
        avg((spending_score = 'Low')::integer) as share_spending_low,
        avg((spending_score = 'Average')::integer) as share_spending_average,
        avg((spending_score = 'High')::integer) as share_spending_high,
        count_if(spending_score = 'High') as high_spenders

    from customers
    group by segment_id

),

final as (

    select
        per_segment.segment_id,
        per_segment.customers,
        per_segment.customers / base.customers as share_of_customers,
        per_segment.mean_age,
        per_segment.share_married,
        per_segment.share_graduated,
        per_segment.share_female,
        per_segment.mean_family_size,
        per_segment.mean_work_experience,
        per_segment.share_spending_low,
        per_segment.share_spending_average,
        per_segment.share_spending_high,
        coalesce(per_segment.high_spenders / nullif(base.high_spenders, 0), 0) as share_of_high_spenders

    from per_segment
    cross join base

)

select * from final
